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

variable "api_instance_id" {
  type = string
}

variable "web_instance_id" {
  type = string
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
