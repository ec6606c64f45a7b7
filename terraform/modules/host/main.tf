data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  name      = "${var.project}-${var.env}-${var.role}"
  tags      = merge(var.tags, { Name = local.name, Role = var.role, Env = var.env })
  arn       = data.aws_partition.current.partition
  region    = data.aws_region.current.name
  account   = data.aws_caller_identity.current.account_id
  bucket    = "arn:${local.arn}:s3:::${var.artifact_bucket}"
  ssm_path  = "arn:${local.arn}:ssm:${local.region}:${local.account}:parameter/damso/${var.env}/${var.role}"
  ssh_rules = length(var.ssh_cidrs) == 0 ? [] : [{ description = "ssh", protocol = "tcp", from_port = 22, to_port = 22, cidr_blocks = var.ssh_cidrs }]
}

resource "aws_security_group" "this" {
  name        = local.name
  description = "damso ${var.env} ${var.role} host"
  vpc_id      = var.vpc_id
  tags        = local.tags

  dynamic "ingress" {
    for_each = concat(var.ingress_rules, local.ssh_rules)
    content {
      description = ingress.value.description
      protocol    = ingress.value.protocol
      from_port   = ingress.value.from_port
      to_port     = ingress.value.to_port
      cidr_blocks = ingress.value.cidr_blocks
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

resource "aws_iam_role" "this" {
  name = local.name
  tags = local.tags

  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { Service = "ec2.amazonaws.com" }
    }]
  })
}

# The host may read only its env's release prefix, write only its env's
# reports, and read only its own role's parameters.
resource "aws_iam_role_policy" "this" {
  name = "${local.name}-scoped"
  role = aws_iam_role.this.id

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "ReadRelease"
        Effect   = "Allow"
        Action   = "s3:GetObject"
        Resource = "${local.bucket}/${var.env}/*"
      },
      {
        Sid       = "ListEnvPrefix"
        Effect    = "Allow"
        Action    = "s3:ListBucket"
        Resource  = local.bucket
        Condition = { StringLike = { "s3:prefix" = "${var.env}/*" } }
      },
      {
        Sid      = "WriteReport"
        Effect   = "Allow"
        Action   = "s3:PutObject"
        Resource = "${local.bucket}/${var.env}/reports/*"
      },
      {
        Sid      = "ReadOwnParameters"
        Effect   = "Allow"
        Action   = ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"]
        Resource = [local.ssm_path, "${local.ssm_path}/*"]
      },
      {
        Sid       = "DecryptParameters"
        Effect    = "Allow"
        Action    = "kms:Decrypt"
        Resource  = "arn:${local.arn}:kms:${local.region}:${local.account}:key/*"
        Condition = { StringEquals = { "kms:ViaService" = "ssm.${local.region}.amazonaws.com" } }
      },
    ]
  })
}

resource "aws_iam_role_policy_attachment" "extra" {
  for_each = toset(var.extra_policy_arns)

  role       = aws_iam_role.this.name
  policy_arn = each.value
}

resource "aws_iam_instance_profile" "this" {
  name = local.name
  role = aws_iam_role.this.name
  tags = local.tags
}

resource "aws_instance" "this" {
  ami                         = var.ami_id
  instance_type               = var.instance_type
  subnet_id                   = var.subnet_id
  key_name                    = var.key_name
  vpc_security_group_ids      = [aws_security_group.this.id]
  iam_instance_profile        = aws_iam_instance_profile.this.name
  user_data                   = var.user_data == "" ? null : var.user_data
  user_data_replace_on_change = false
  tags                        = local.tags
  volume_tags                 = local.tags

  metadata_options {
    http_endpoint = "enabled"
    http_tokens   = "required"
    # 2 hops so containers on a bridge network can reach IMDSv2 too.
    http_put_response_hop_limit = 2
  }

  root_block_device {
    volume_type = "gp3"
    volume_size = var.volume_size
    encrypted   = true
  }

  # The bootstrap only installs the reconcile unit; releases arrive through S3.
  # A newer bootstrap must not stop a running host.
  lifecycle {
    ignore_changes = [user_data]
  }
}

resource "aws_eip" "this" {
  count = var.associate_eip ? 1 : 0

  domain   = "vpc"
  instance = aws_instance.this.id
  tags     = local.tags
}
