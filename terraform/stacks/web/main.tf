# The Next.js console: 3000 from inside the VPC only (the ALB forwards to it).
locals {
  associate_eip = false
  ingress_rules = [
    { description = "web", protocol = "tcp", from_port = 3000, to_port = 3000, cidr_blocks = [var.vpc_cidr] },
  ]
}
