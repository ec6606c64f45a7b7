output "instance_id" {
  value = module.host.instance_id
}

output "private_ip" {
  value = module.host.private_ip
}

output "public_ip" {
  value = module.host.public_ip
}

output "security_group_id" {
  value = module.host.security_group_id
}

output "instance_ids" {
  value = module.host.instance_ids
}

output "private_ips" {
  value = module.host.private_ips
}

output "public_ips" {
  value = module.host.public_ips
}

output "log_group" {
  value = module.host.log_group
}
