variable "bucket_name" {
  description = "Name of the release-artifact bucket, e.g. \"damso-prod-artifacts\"."
  type        = string
}

variable "force_destroy" {
  description = "Allow destroying the bucket while it still holds objects (sandbox only)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Extra tags for the bucket."
  type        = map(string)
  default     = {}
}
