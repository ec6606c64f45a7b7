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

variable "subnet_ids" {
  type        = list(string)
  description = "Subnets to spread the role's instances over (one per availability zone)."
  default     = []
}

variable "instance_count" {
  type        = number
  description = "How many instances of the role (roles.<role>.count in damso.toml)."
  default     = 1
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

variable "metadata_hop_limit" {
  type        = number
  description = "IMDSv2 hop limit: 1, or 2 when the role's containers call AWS APIs themselves (from the role in damso.toml)."
  default     = 1
}

variable "managed_policy_arns" {
  type        = list(string)
  description = "Managed IAM policies for the role's instance (from the role in damso.toml)."
  default     = []
}

variable "extra_policy_statements" {
  type = list(object({
    actions   = list(string)
    resources = list(string)
  }))
  description = "Allow statements for the role's instance (from the role in damso.toml)."
  default     = []
}

variable "cloudwatch_logs" {
  type        = bool
  description = "The role's containers log to a CloudWatch Logs group of its own (logs.cloudwatch in damso.toml)."
  default     = true
}

variable "log_retention_days" {
  type        = number
  description = "How long the role's log group keeps lines (logs.retention_days in damso.toml)."
  default     = 30
}
