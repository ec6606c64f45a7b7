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

variable "client_security_group_ids" {
  type        = list(string)
  description = "The security_group_id outputs of the role stacks that use PostgreSQL and Redis; empty = the whole VPC CIDR (the old rule)."
  default     = []
}

variable "redis_tls" {
  type        = bool
  description = "environments.<env>.data.redis_tls: Redis requires TLS (rediss://, AUTH by damso); false: redis://, no AUTH."
  default     = true
}

variable "db_deletion_protection" {
  type        = bool
  description = "false only for a sandbox environment (damso passes it): there `damso destroy` removes the database."
  default     = true
}
