# The LiveKit server: public subnet, Elastic IP, a DNS name when a hosted zone is
# given, and exactly the ports livekit.yaml (and Caddy, with tls) listen on:
#   port (signal_port)       HTTP API and WebSocket signalling; with tls only Caddy
#                            reaches it (127.0.0.1), so it is not opened at all
#   rtc.tcp_port             ICE over TCP, the fallback when UDP is blocked
#   rtc.port_range_start/end media over UDP
#   80 and 443 (tls)         Caddy: the ACME challenge and wss:// signalling
locals {
  associate_eip = true
  anywhere      = ["0.0.0.0/0"]
  ingress_rules = concat(
    var.tls ? [] : [
      { description = "signal (HTTP/WebSocket)", protocol = "tcp", from_port = var.signal_port, to_port = var.signal_port, cidr_blocks = var.signal_cidrs },
    ],
    [
      { description = "ICE over TCP (rtc.tcp_port)", protocol = "tcp", from_port = var.tcp_fallback_port, to_port = var.tcp_fallback_port, cidr_blocks = local.anywhere },
      { description = "media (UDP)", protocol = "udp", from_port = var.udp_port_start, to_port = var.udp_port_end, cidr_blocks = local.anywhere },
    ],
    var.tls ? [
      { description = "ACME challenge (Caddy)", protocol = "tcp", from_port = 80, to_port = 80, cidr_blocks = local.anywhere },
      { description = "TLS signalling (Caddy)", protocol = "tcp", from_port = 443, to_port = 443, cidr_blocks = local.anywhere },
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
