variable "project" {
  type = string
}

variable "env" {
  type = string
}

variable "region" {
  type = string
}

variable "role" {
  type        = string
  description = "The damso role this host serves."
}

variable "vpc_id" {
  type = string
}

variable "vpc_cidr" {
  type = string
}

variable "subnet_id" {
  type = string
}

variable "artifact_bucket" {
  type = string
}

variable "ami_id" {
  type = string
}

variable "instance_type" {
  type = string
}

variable "volume_size" {
  type = number
}

variable "user_data" {
  type        = string
  description = "The bootstrap that installs the reconcile unit; holds no secret."
}

variable "ssh_cidrs" {
  type    = list(string)
  default = []
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
