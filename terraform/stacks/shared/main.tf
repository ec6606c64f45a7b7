# Env-wide resources: the network and the private, versioned release bucket.
data "aws_caller_identity" "current" {}

module "network" {
  source             = "../../modules/network"
  name               = "${var.project}-${var.env}"
  vpc_cidr           = var.vpc_cidr
  availability_zones = var.availability_zones
  enable_nat_gateway = var.enable_nat_gateway
  flow_logs          = var.flow_logs
}

module "artifacts" {
  source        = "../../modules/artifacts"
  bucket_name   = "${var.project}-${var.env}-artifacts-${data.aws_caller_identity.current.account_id}"
  force_destroy = var.force_destroy_artifacts

  deny_insecure_transport = var.deny_insecure_transport
  noncurrent_version_days = var.noncurrent_version_days
  lifecycle_rules         = var.lifecycle_rules
}
