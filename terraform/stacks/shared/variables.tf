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
  type        = list(string)
  description = "AZs of the subnets (from the environment in damso.toml); empty = the region's first two available AZs."
  default     = []
}

variable "enable_nat_gateway" {
  type    = bool
  default = true
}

variable "flow_logs" {
  type        = bool
  description = "VPC flow logs to CloudWatch Logs (from the environment in damso.toml)."
  default     = true
}

variable "deny_insecure_transport" {
  type        = bool
  description = "The release bucket refuses requests without TLS. damso passes true for every real AWS environment; false (the default until it does) for the sandbox, whose emulator evaluates no policy condition and would refuse every request."
  default     = false
}

variable "lifecycle_rules" {
  type        = bool
  description = "The release bucket's lifecycle rules (old versions expire). damso passes false for the sandbox only: its emulator never runs them, and the provider waits 55 s after creating them."
  default     = true
}

variable "noncurrent_version_days" {
  type        = number
  description = "Days the release bucket keeps an overwritten or deleted object's old version."
  default     = 90
}

variable "force_destroy_artifacts" {
  type        = bool
  description = "Let `damso destroy` remove the release bucket with its objects."
  default     = false
}
