output "alb_dns_name" {
  value = module.edge.alb_dns_name
}

output "nlb_dns_name" {
  value = module.edge.nlb_dns_name
}
