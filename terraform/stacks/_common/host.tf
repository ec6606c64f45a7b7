# The host of a role stack; each stack's main.tf sets local.ingress_rules and local.associate_eip.
module "host" {
  source          = "../../modules/host"
  project         = var.project
  env             = var.env
  role            = var.role
  vpc_id          = var.vpc_id
  subnet_id       = var.subnet_id
  subnet_ids      = var.subnet_ids
  instance_count  = var.instance_count
  artifact_bucket = var.artifact_bucket
  ami_id          = var.ami_id
  instance_type   = var.instance_type
  volume_size     = var.volume_size
  user_data       = var.user_data
  ssh_cidrs       = var.ssh_cidrs
  associate_eip   = local.associate_eip
  ingress_rules   = local.ingress_rules

  metadata_hop_limit      = var.metadata_hop_limit
  managed_policy_arns     = var.managed_policy_arns
  extra_policy_statements = var.extra_policy_statements
  cloudwatch_logs         = var.cloudwatch_logs
  log_retention_days      = var.log_retention_days
}
