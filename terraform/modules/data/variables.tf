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

variable "client_security_group_ids" {
  type        = list(string)
  description = "Security groups of the app roles that may connect to PostgreSQL and Redis; when given, no CIDR is admitted."
  default     = []
}

variable "client_cidrs" {
  type        = list(string)
  description = "Who may connect when client_security_group_ids is empty (the VPC's CIDR, the old behaviour)."
  default     = []
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

variable "db_multi_az" {
  type        = bool
  description = "A standby in a second AZ (doubles the instance cost)."
  default     = false
}

variable "db_deletion_protection" {
  type        = bool
  description = "RDS refuses to delete the database (and `damso destroy` stops there) until this is turned off; false only in the sandbox, whose emulated database holds nothing."
  default     = true
}

variable "db_backup_window" {
  type        = string
  description = "Daily backup window, UTC (default 02:00-03:00 KST); must not overlap the maintenance window."
  default     = "17:00-18:00"
}

variable "db_maintenance_window" {
  type        = string
  description = "Weekly maintenance window, UTC."
  default     = "sun:19:00-sun:20:00"
}

variable "log_retention_days" {
  type        = number
  description = "Days CloudWatch Logs keeps the exported PostgreSQL logs."
  default     = 365
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

variable "redis_tls" {
  type        = bool
  description = "Redis requires TLS in transit (rediss://); false only for clients that cannot speak TLS, and then there is no AUTH (ElastiCache allows it only with TLS)."
  default     = true
}

variable "redis_replicas" {
  type        = number
  description = "Read replicas besides the primary; one or more turns on Multi-AZ automatic failover."
  default     = 0

  validation {
    condition     = var.redis_replicas >= 0 && var.redis_replicas <= 5
    error_message = "redis_replicas must be between 0 and 5."
  }
}

variable "redis_snapshot_retention_days" {
  type        = number
  description = "Days of daily Redis snapshots to keep (0 turns them off)."
  default     = 1
}
