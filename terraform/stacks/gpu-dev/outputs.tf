output "instance_ids" {
  description = "Box name → EC2 instance id."
  value       = { for name, i in aws_instance.box : name => i.id }
}

output "security_group_ids" {
  value = { for name, sg in aws_security_group.box : name => sg.id }
}
