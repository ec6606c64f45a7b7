output "instance_id" {
  description = "The first instance (the only one unless instance_count > 1)."
  value       = aws_instance.this[0].id
}

output "private_ip" {
  value = aws_instance.this[0].private_ip
}

output "public_ip" {
  description = "The Elastic IP when there is one, else the instance's public IP (empty in a private subnet)."
  # From the resources themselves (not local.public_ips): checkov then sees the LiveKit
  # A record point at an address (CKV2_AWS_23).
  value = var.associate_eip ? aws_eip.this[0].public_ip : aws_instance.this[0].public_ip
}

output "instance_ids" {
  value = aws_instance.this[*].id
}

output "private_ips" {
  value = aws_instance.this[*].private_ip
}

output "public_ips" {
  value = local.public_ips
}

output "security_group_id" {
  value = aws_security_group.this.id
}

output "role_name" {
  value = aws_iam_role.this.name
}

output "instance_profile_name" {
  value = aws_iam_instance_profile.this.name
}

output "ingress_rules" {
  description = "The ingress rules of the host's security group (the role's ports, and SSH when ssh_cidrs is set)."
  value       = aws_security_group.this.ingress
}

output "log_group" {
  description = "The role's CloudWatch Logs group (empty when cloudwatch_logs is false)."
  value       = var.cloudwatch_logs ? aws_cloudwatch_log_group.containers[0].name : ""
}
