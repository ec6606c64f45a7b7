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
  description = "AZs to spread subnets over; subnet i goes to AZ i (modulo the list length)."
  type        = list(string)
  default     = ["ap-northeast-2a", "ap-northeast-2c"]
}

variable "public_subnet_cidrs" {
  description = "Public subnets (load balancers, LiveKit, NAT gateway)."
  type        = list(string)
  default     = ["10.0.1.0/24", "10.0.2.0/24"]
}

variable "private_subnet_cidrs" {
  description = "Private app subnets (api, web, agent); default route through the NAT gateway."
  type        = list(string)
  default     = ["10.0.10.0/24"]
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

variable "tags" {
  description = "Extra tags for every resource."
  type        = map(string)
  default     = {}
}
