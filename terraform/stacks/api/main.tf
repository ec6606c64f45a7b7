# The NestJS API and its indexing worker: 8080 from inside the VPC only.

module "host" {
  source          = "../../modules/host"
  project         = var.project
  env             = var.env
  role            = var.role
  vpc_id          = var.vpc_id
  subnet_id       = var.subnet_id
  artifact_bucket = var.artifact_bucket
  ami_id          = var.ami_id
  instance_type   = var.instance_type
  volume_size     = var.volume_size
  user_data       = var.user_data
  ssh_cidrs       = var.ssh_cidrs
  associate_eip   = false
  ingress_rules = [
    { description = "api", protocol = "tcp", from_port = 8080, to_port = 8080, cidr_blocks = [var.vpc_cidr] },
  ]
}
