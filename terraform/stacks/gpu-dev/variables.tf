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

variable "vpc_id" {
  type        = string
  description = "VPC of the boxes' security groups (the shared stack's)."
}

variable "subnet_id" {
  type        = string
  description = "Public subnet the boxes are launched in (a public IP each, no Elastic IP)."
}

variable "boxes" {
  description = "GPU dev boxes by name (damso.toml environments.<env>.gpu_dev)."
  type = map(object({
    instance_type = string
    ami_id        = string # "" = the newest Deep Learning OSS Nvidia Driver PyTorch AMI (Ubuntu 22.04)
    volume_size   = number
    ssh_cidrs     = list(string)
    key_name      = optional(string)
    start_stopped = optional(bool, true)
  }))
  default = {}
}
