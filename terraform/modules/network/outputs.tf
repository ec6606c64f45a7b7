output "vpc_id" {
  value = aws_vpc.this.id
}

output "vpc_cidr" {
  value = aws_vpc.this.cidr_block
}

output "public_subnet_ids" {
  value = aws_subnet.public[*].id
}

output "private_subnet_ids" {
  value = aws_subnet.private[*].id
}

output "data_subnet_ids" {
  value = aws_subnet.data[*].id
}

output "nat_gateway_public_ip" {
  description = "Egress address of the private subnets (null when NAT is off)."
  value       = one(aws_eip.nat[*].public_ip)
}

output "availability_zones" {
  description = "The AZs the subnets are spread over."
  value       = local.azs
}

output "flow_log_group" {
  description = "The CloudWatch log group of the VPC flow logs (null when they are off)."
  value       = one(aws_cloudwatch_log_group.flow_logs[*].name)
}
