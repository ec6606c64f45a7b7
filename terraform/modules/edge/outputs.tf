output "alb_dns_name" {
  value = aws_lb.alb.dns_name
}

output "nlb_dns_name" {
  value = one(aws_lb.nlb[*].dns_name)
}

output "alb_security_group_id" {
  value = aws_security_group.alb.id
}
