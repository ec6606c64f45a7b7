variable "name" {
  type        = string
  description = "Name prefix, e.g. \"damso-prod\"."
}

variable "vpc_id" {
  type = string
}

variable "vpc_cidr" {
  type        = string
  description = "The VPC's CIDR: where the ALB may send traffic (its targets)."
}

variable "public_subnet_ids" {
  type = list(string)
}

variable "domain" {
  type        = string
  description = "e.g. sodam.store: the console at <domain>, the API at api.<domain>."
}

variable "zone_id" {
  type        = string
  description = "Route53 hosted zone of the domain; empty for no records."
  default     = ""
}

variable "certificate_arn" {
  type        = string
  description = "ACM certificate covering <domain> and api.<domain> (and the LiveKit name)."
}

variable "api_instance_ids" {
  type        = list(string)
  description = "Every api instance (roles.api.count), each a target of the api target group."
}

variable "web_instance_ids" {
  type        = list(string)
  description = "Every web instance (roles.web.count), each a target of the web target group."
}

variable "livekit_instance_id" {
  type        = string
  description = "Empty for no LiveKit NLB."
  default     = ""
}

variable "livekit_name" {
  type        = string
  description = "DNS name for LiveKit signalling, e.g. prod-livekit."
  default     = "livekit"
}

variable "livekit_signal_port" {
  type        = number
  description = "LiveKit's signal port on the host (livekit.yaml port), behind the NLB's TLS listener."
  default     = 7880
}

variable "ssl_policy" {
  type        = string
  description = "TLS policy of the ALB's HTTPS and the NLB's TLS listeners: TLS 1.3 and 1.2 with forward-secret ciphers only."
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"

  validation {
    condition     = can(regex("^ELBSecurityPolicy-TLS13-1-[23]-", var.ssl_policy))
    error_message = "ssl_policy must be a TLS 1.3 policy whose minimum is TLS 1.2 or 1.3 (ELBSecurityPolicy-TLS13-1-2-... or ELBSecurityPolicy-TLS13-1-3-...)."
  }
}
