variable "project" {
  type        = string
  description = "Name prefix of every resource (damso.toml project.name)."
}

variable "env" {
  type        = string
  description = "Environment name."
}

variable "region" {
  type        = string
  description = "AWS region."
}

variable "vpc_cidr" {
  type    = string
  default = "10.0.0.0/16"
}

variable "availability_zones" {
  type    = list(string)
  default = ["ap-northeast-2a", "ap-northeast-2c"]
}

variable "enable_nat_gateway" {
  type    = bool
  default = true
}

variable "force_destroy_artifacts" {
  type        = bool
  description = "Let `damso destroy` remove the release bucket with its objects."
  default     = false
}
