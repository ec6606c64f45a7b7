# The GPU voice agent: STT 8000, Ollama 11434 and the MCP server 8001 from inside the VPC only.
locals {
  associate_eip = false
  ingress_rules = [
    { description = "stt", protocol = "tcp", from_port = 8000, to_port = 8000, cidr_blocks = [var.vpc_cidr] },
    { description = "ollama", protocol = "tcp", from_port = 11434, to_port = 11434, cidr_blocks = [var.vpc_cidr] },
    { description = "kma-mcp", protocol = "tcp", from_port = 8001, to_port = 8001, cidr_blocks = [var.vpc_cidr] },
  ]
}
