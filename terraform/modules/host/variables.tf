variable "project" {
  description = "Project name; first part of every resource name."
  type        = string
}

variable "env" {
  description = "Environment name (prod, dev, sandbox...)."
  type        = string
}

variable "role" {
  description = "Runtime role of the host: api, web, agent, livekit."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the security group."
  type        = string
}

variable "subnet_id" {
  description = "Subnet the instance is launched in."
  type        = string
}

variable "ami_id" {
  description = "AMI of the instance (damso resolves it; AMI lookups are not done here)."
  type        = string
}

variable "instance_type" {
  description = "EC2 instance type."
  type        = string
}

variable "volume_size" {
  description = "Root volume size in GiB (gp3, encrypted)."
  type        = number
  default     = 30
}

variable "user_data" {
  description = "Bootstrap script rendered by damso. Never contains a secret."
  type        = string
  default     = ""
}

variable "key_name" {
  description = "Optional EC2 key pair name."
  type        = string
  default     = null
}

variable "ingress_rules" {
  description = "Ingress rules of the host's security group."
  type = list(object({
    description = string
    protocol    = string
    from_port   = number
    to_port     = number
    cidr_blocks = list(string)
  }))
  default = []
}

variable "ssh_cidrs" {
  description = "CIDRs allowed to reach port 22; no SSH rule at all when empty."
  type        = list(string)
  default     = []
}

variable "artifact_bucket" {
  description = "Name of the release-artifact bucket the host reads its env's prefix from."
  type        = string
}

variable "associate_eip" {
  description = "Give the instance an Elastic IP."
  type        = bool
  default     = false
}

variable "extra_policy_arns" {
  description = "Managed policies to attach to the instance role besides the scoped inline policy (e.g. Bedrock access)."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}
