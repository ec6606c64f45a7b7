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
