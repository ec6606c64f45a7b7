# The team's GPU dev boxes: one instance each in a public subnet, created and then
# left stopped (start_stopped) so that a box costs nothing until someone starts it.
# `damso dev gpu start|stop` changes the state through the EC2 API afterwards, so
# Terraform ignores the state it finds: a plan never stops a box someone is using.
locals {
  need_ami = anytrue([for b in values(var.boxes) : b.ami_id == ""])
}

data "aws_ami" "deep_learning" {
  count       = local.need_ami ? 1 : 0
  owners      = ["amazon"]
  most_recent = true

  filter {
    name   = "name"
    values = ["Deep Learning OSS Nvidia Driver AMI GPU PyTorch * (Ubuntu 22.04) *"]
  }

  filter {
    name   = "architecture"
    values = ["x86_64"]
  }
}

resource "aws_security_group" "box" {
  # checkov:skip=CKV_AWS_382:A dev box pulls models, packages and code from anywhere on the internet; egress cannot be narrowed to fixed addresses. Ingress is SSH from the box's ssh_cidrs only.
  for_each = var.boxes

  name        = "${var.project}-${var.env}-gpu-${each.key}"
  description = "damso ${var.env} GPU dev box ${each.key}"
  vpc_id      = var.vpc_id
  tags        = { Name = "${var.project}-${var.env}-gpu-${each.key}", Role = "gpu-dev", GpuDev = each.key }

  dynamic "ingress" {
    for_each = length(each.value.ssh_cidrs) == 0 ? [] : [each.value.ssh_cidrs]
    content {
      description = "ssh"
      protocol    = "tcp"
      from_port   = 22
      to_port     = 22
      cidr_blocks = ingress.value
    }
  }

  egress {
    description = "all"
    protocol    = "-1"
    from_port   = 0
    to_port     = 0
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_instance" "box" {
  # checkov:skip=CKV2_AWS_41:No instance role on purpose: a dev box is a person's workstation, so nothing on it can use the AWS account (least privilege); developers use their own credentials.
  # checkov:skip=CKV_AWS_126:No detailed (1-minute) monitoring: it is billed per instance, and a dev box is stopped when nobody uses it.
  # checkov:skip=CKV_AWS_135:GPU instance types (g4dn, g5, g6, ...) are EBS-optimized by default, where the flag changes nothing.
  for_each = var.boxes

  ami                    = each.value.ami_id != "" ? each.value.ami_id : data.aws_ami.deep_learning[0].id
  instance_type          = each.value.instance_type
  subnet_id              = var.subnet_id # public: the subnet maps a public IP on launch
  key_name               = each.value.key_name
  vpc_security_group_ids = [aws_security_group.box[each.key].id]
  tags                   = { Name = "${var.project}-${var.env}-gpu-${each.key}", Role = "gpu-dev", GpuDev = each.key }
  volume_tags            = { Name = "${var.project}-${var.env}-gpu-${each.key}", Role = "gpu-dev", GpuDev = each.key }

  metadata_options {
    http_endpoint = "enabled"
    http_tokens   = "required"
  }

  root_block_device {
    volume_type = "gp3"
    volume_size = each.value.volume_size
    encrypted   = true
  }

  # A newer Deep Learning AMI must not replace a box with someone's work on it.
  lifecycle {
    ignore_changes = [ami]
  }
}

resource "aws_ec2_instance_state" "box" {
  for_each = var.boxes

  instance_id = aws_instance.box[each.key].id
  state       = each.value.start_stopped ? "stopped" : "running"

  lifecycle {
    ignore_changes = [state]
  }
}
