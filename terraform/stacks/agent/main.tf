# The GPU voice agent: STT 8000, Ollama 11434 and the MCP server 8001 from inside the VPC only.

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
    { description = "stt", protocol = "tcp", from_port = 8000, to_port = 8000, cidr_blocks = [var.vpc_cidr] },
    { description = "ollama", protocol = "tcp", from_port = 11434, to_port = 11434, cidr_blocks = [var.vpc_cidr] },
    { description = "kma-mcp", protocol = "tcp", from_port = 8001, to_port = 8001, cidr_blocks = [var.vpc_cidr] },
  ]
}
