variable "signal_port" {
  type        = number
  description = "livekit.yaml port: the HTTP API and WebSocket signalling (opened only without tls)."
  default     = 7880
}

variable "signal_cidrs" {
  type        = list(string)
  description = "Who may reach signal_port when tls is off: anyone by default (ws:// clients); the VPC when an NLB in front terminates TLS."
  default     = ["0.0.0.0/0"]
}

variable "tcp_fallback_port" {
  type        = number
  description = "livekit.yaml rtc.tcp_port: ICE over TCP, the fallback when UDP is blocked."
  default     = 7883
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
  description = "Caddy terminates TLS on the host: opens 80 and 443 and closes signal_port (Caddy reaches it on 127.0.0.1)."
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
