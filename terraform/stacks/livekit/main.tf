# The LiveKit server: public subnet, Elastic IP, exactly the ports LiveKit needs,
# and a DNS name when a hosted zone is given.
locals {
  anywhere = ["0.0.0.0/0"]
  rules = concat(
    [
      { description = "signal (HTTP/WebSocket)", protocol = "tcp", from_port = 7880, to_port = 7880, cidr_blocks = local.anywhere },
      { description = "ICE over TCP", protocol = "tcp", from_port = 7881, to_port = 7881, cidr_blocks = local.anywhere },
      { description = "TCP fallback", protocol = "tcp", from_port = var.tcp_fallback_port, to_port = var.tcp_fallback_port, cidr_blocks = local.anywhere },
      { description = "media (UDP)", protocol = "udp", from_port = var.udp_port_start, to_port = var.udp_port_end, cidr_blocks = local.anywhere },
    ],
    var.tls ? [
      { description = "ACME challenge", protocol = "tcp", from_port = 80, to_port = 80, cidr_blocks = local.anywhere },
      { description = "TLS (Caddy)", protocol = "tcp", from_port = 443, to_port = 443, cidr_blocks = local.anywhere },
    ] : [],
  )
}

module "host" {
  source          = "../../modules/host"
  project         = var.project
  env             = var.env
  role            = var.role
  vpc_id          = var.vpc_id
  subnet_id       = var.subnet_id
  artifact_bucket = var.artifact_bucket
  ami_id          = var.ami_id
  instance_type   = var.instance_type
  volume_size     = var.volume_size
  user_data       = var.user_data
  ssh_cidrs       = var.ssh_cidrs
  associate_eip   = true
  ingress_rules   = local.rules
}

resource "aws_route53_record" "livekit" {
  count   = var.zone_id == "" ? 0 : 1
  zone_id = var.zone_id
  name    = "${var.livekit_subdomain}.${var.domain}"
  type    = "A"
  ttl     = 60
  records = [module.host.public_ip]
}
