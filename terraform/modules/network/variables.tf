variable "name" {
  description = "Name prefix for every resource, e.g. \"damso-prod\"."
  type        = string
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC."
  type        = string
  default     = "10.0.0.0/16"
}

variable "availability_zones" {
  description = "AZs to spread subnets over (subnet i goes to AZ i, modulo the list length); empty = the region's first two available AZs."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.availability_zones) != 1
    error_message = "Give two or more availability zones (RDS and the load balancers need two), or none for the region's first two."
  }
}

variable "public_subnet_cidrs" {
  description = "Public subnets (load balancers, LiveKit, NAT gateway)."
  type        = list(string)
  default     = ["10.0.1.0/24", "10.0.2.0/24"]
}

variable "private_subnet_cidrs" {
  description = "Private app subnets (api, web, agent), one per availability zone so that a role's instances spread; default route through the NAT gateway."
  type        = list(string)
  default     = ["10.0.10.0/24", "10.0.11.0/24"]
}

variable "data_subnet_cidrs" {
  description = "Private data subnets (RDS, ElastiCache); no route to the internet."
  type        = list(string)
  default     = ["10.0.20.0/24", "10.0.21.0/24"]
}

variable "enable_nat_gateway" {
  description = "Create one NAT gateway (with an Elastic IP) for the private app subnets."
  type        = bool
  default     = true
}

variable "flow_logs" {
  description = "Send VPC flow logs (ALL traffic) to a CloudWatch log group."
  type        = bool
  default     = true
}

variable "flow_logs_retention_days" {
  description = "How long the flow-log group keeps records (a CloudWatch Logs retention value)."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.flow_logs_retention_days)
    error_message = "flow_logs_retention_days must be one of CloudWatch Logs' retention values (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653)."
  }
}

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}
