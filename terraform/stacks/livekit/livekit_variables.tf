variable "signal_port" {
  type        = number
  description = "LiveKit's HTTP API and WebSocket signalling port."
  default     = 7880
}

variable "ice_tcp_port" {
  type    = number
  default = 7881
}

variable "tcp_fallback_port" {
  type    = number
  default = 7883
}

variable "udp_port_start" {
  type    = number
  default = 50000
}

variable "udp_port_end" {
  type    = number
  default = 60000
}

variable "tls" {
  type        = bool
  description = "Caddy terminates TLS on the host (opens 80 and 443)."
  default     = false
}

variable "zone_id" {
  type        = string
  description = "Route53 hosted zone for the DNS record; empty for none."
  default     = ""
}

variable "domain" {
  type    = string
  default = ""
}

variable "livekit_subdomain" {
  type    = string
  default = "livekit"
}
