# The NestJS API and its indexing worker: 8080 from inside the VPC only.
locals {
  associate_eip = false
  ingress_rules = [
    { description = "api", protocol = "tcp", from_port = 8080, to_port = 8080, cidr_blocks = [var.vpc_cidr] },
  ]
}
