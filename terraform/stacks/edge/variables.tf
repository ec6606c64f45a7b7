variable "project" {
  type = string
}

variable "env" {
  type = string
}

variable "region" {
  type = string
}

variable "vpc_id" {
  type = string
}

variable "vpc_cidr" {
  type = string
}

variable "public_subnet_ids" {
  type = list(string)
}

variable "domain" {
  type = string
}

variable "zone_id" {
  type    = string
  default = ""
}

variable "certificate_arn" {
  type = string
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
  type    = string
  default = ""
}

variable "livekit_signal_port" {
  type        = number
  description = "environments.<env>.livekit.port"
  default     = 7880
}
