variable "bucket_name" {
  description = "Name of the release-artifact bucket, e.g. \"damso-prod-artifacts\"."
  type        = string
}

variable "force_destroy" {
  description = "Allow destroying the bucket while it still holds objects (sandbox only)."
  type        = bool
  default     = false
}

variable "deny_insecure_transport" {
  description = "A bucket policy refusing every request that does not use TLS (aws:SecureTransport). Off only for an emulator that cannot evaluate the condition."
  type        = bool
  default     = true
}

variable "lifecycle_rules" {
  description = "Old versions expire, unfinished uploads and lone delete markers go. damso passes false for the sandbox only: its emulator never runs the rules, and the provider waits 55 s after creating them (10 s, then 10 equal reads 5 s apart)."
  type        = bool
  default     = true
}

variable "noncurrent_version_days" {
  description = "Days an overwritten or deleted object's old version is kept before it expires."
  type        = number
  default     = 90

  validation {
    condition     = var.noncurrent_version_days >= 1
    error_message = "noncurrent_version_days must be at least 1."
  }
}

variable "tags" {
  description = "Extra tags for the bucket."
  type        = map(string)
  default     = {}
}
