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

variable "data_subnet_ids" {
  type = list(string)
}

variable "create_redis_parameter_group" {
  type    = bool
  default = true
}
