output "instance_id" {
  description = "The first instance (the only one unless instance_count > 1)."
  value       = aws_instance.this[0].id
}

output "private_ip" {
  value = aws_instance.this[0].private_ip
}

output "public_ip" {
  description = "The Elastic IP when there is one, else the instance's public IP (empty in a private subnet)."
  value       = local.public_ips[0]
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
