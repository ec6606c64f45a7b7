variable "name" {
  type        = string
  description = "Name prefix, e.g. \"damso-prod\"."
}

variable "vpc_id" {
  type = string
}

variable "data_subnet_ids" {
  type = list(string)
}

variable "client_cidrs" {
  type        = list(string)
  description = "Who may connect to PostgreSQL and Redis (the VPC)."
}

variable "db_instance_class" {
  type    = string
  default = "db.t4g.medium"
}

variable "db_allocated_storage" {
  type    = number
  default = 50
}

variable "db_name" {
  type    = string
  default = "damso"
}

variable "db_username" {
  type    = string
  default = "damso"
}

variable "redis_node_type" {
  type    = string
  default = "cache.t4g.small"
}

variable "create_redis_parameter_group" {
  type        = bool
  description = "A parameter group with maxmemory-policy noeviction (BullMQ needs it); the emulator hangs on it."
  default     = true
}
