variable "name" {
  type        = string
  description = "Name prefix, e.g. \"damso-prod\"."
}

variable "vpc_id" {
  type = string
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

variable "api_instance_id" {
  type = string
}

variable "web_instance_id" {
  type = string
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
