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

variable "instance_count" {
  type        = number
  description = "How many instances of the role (roles.<role>.count in damso.toml)."
  default     = 1
  validation {
    condition     = var.instance_count >= 1 && var.instance_count <= 20
    error_message = "instance_count must be between 1 and 20."
  }
}

variable "subnet_ids" {
  type        = list(string)
  description = "Subnets to spread the instances over (one per availability zone); empty = subnet_id for all."
  default     = []
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

variable "metadata_hop_limit" {
  description = "IMDSv2 PUT response hop limit: 1 keeps the instance role's credentials away from containers on a bridge network; 2 only for a role whose containers call AWS APIs."
  type        = number
  default     = 1

  validation {
    condition     = contains([1, 2], var.metadata_hop_limit)
    error_message = "metadata_hop_limit must be 1 (containers cannot reach the metadata service) or 2 (they can)."
  }
}

variable "managed_policy_arns" {
  description = "IAM managed policies attached to the instance role besides damso's scoped policy (e.g. arn:aws:iam::aws:policy/AmazonBedrockLimitedAccess)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.managed_policy_arns : can(regex("^arn:aws[a-z-]*:iam::(aws|[0-9]{12}):policy/.+$", arn))])
    error_message = "managed_policy_arns must be IAM policy ARNs (arn:aws:iam::aws:policy/NAME or arn:aws:iam::ACCOUNT:policy/NAME)."
  }

  validation {
    condition     = alltrue([for arn in var.managed_policy_arns : !can(regex(":policy/(AdministratorAccess|PowerUserAccess|IAMFullAccess)$", arn))])
    error_message = "managed_policy_arns must not grant administrator, power-user or IAM-wide access to a host."
  }
}

variable "extra_policy_statements" {
  description = "Allow statements added to the instance role: actions (service:Action, wildcards within a service allowed) on the given resources."
  type = list(object({
    actions   = list(string)
    resources = list(string)
  }))
  default = []

  validation {
    condition = alltrue([for st in var.extra_policy_statements :
      length(st.actions) > 0 && alltrue([for a in st.actions : can(regex("^[a-z0-9-]+:[A-Za-z0-9*]+$", a)) && !startswith(a, "iam:") && !startswith(a, "sts:")])
    ])
    error_message = "Each statement needs actions of the form service:Action (no bare '*'; iam: and sts: actions are not for hosts)."
  }

  validation {
    condition     = alltrue([for st in var.extra_policy_statements : length(st.resources) > 0 && !contains(st.resources, "")])
    error_message = "Each statement needs one or more resources (an ARN or ARN pattern; '*' only where the action has no resource type)."
  }
}

variable "cloudwatch_logs" {
  description = "Make the role's log group (containers log to it with Docker's awslogs driver) and let the host write its streams."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "How long the role's log group keeps lines (a CloudWatch Logs retention value)."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of CloudWatch Logs' retention values (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653)."
  }
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}
