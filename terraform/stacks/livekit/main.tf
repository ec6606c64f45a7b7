# The LiveKit server: public subnet, Elastic IP, exactly the ports LiveKit needs,
# and a DNS name when a hosted zone is given.
locals {
  associate_eip = true
  anywhere      = ["0.0.0.0/0"]
  ingress_rules = concat(
    [
      { description = "signal (HTTP/WebSocket)", protocol = "tcp", from_port = var.signal_port, to_port = var.signal_port, cidr_blocks = local.anywhere },
      { description = "ICE over TCP", protocol = "tcp", from_port = var.ice_tcp_port, to_port = var.ice_tcp_port, cidr_blocks = local.anywhere },
      { description = "TCP fallback", protocol = "tcp", from_port = var.tcp_fallback_port, to_port = var.tcp_fallback_port, cidr_blocks = local.anywhere },
      { description = "media (UDP)", protocol = "udp", from_port = var.udp_port_start, to_port = var.udp_port_end, cidr_blocks = local.anywhere },
    ],
    var.tls ? [
      { description = "ACME challenge", protocol = "tcp", from_port = 80, to_port = 80, cidr_blocks = local.anywhere },
      { description = "TLS (Caddy)", protocol = "tcp", from_port = 443, to_port = 443, cidr_blocks = local.anywhere },
    ] : [],
  )
}

resource "aws_route53_record" "livekit" {
  count   = var.zone_id == "" ? 0 : 1
  zone_id = var.zone_id
  name    = "${var.livekit_subdomain}.${var.domain}"
  type    = "A"
  ttl     = 60
  records = [module.host.public_ip]
}
