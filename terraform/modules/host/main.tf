data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  name       = "${var.project}-${var.env}-${var.role}"
  tags       = merge(var.tags, { Name = local.name, Role = var.role, Env = var.env })
  arn        = data.aws_partition.current.partition
  region     = data.aws_region.current.name
  account    = data.aws_caller_identity.current.account_id
  bucket     = "arn:${local.arn}:s3:::${var.artifact_bucket}"
  ssm_path   = "arn:${local.arn}:ssm:${local.region}:${local.account}:parameter/damso/${var.env}/${var.role}"
  log_group  = "/damso/${var.project}-${var.env}/${var.role}" # damso_ops/deploy/container_logs.py names it the same
  log_arn    = "arn:${local.arn}:logs:${local.region}:${local.account}:log-group:${local.log_group}"
  public_ips = [for i, instance in aws_instance.this : var.associate_eip ? aws_eip.this[i].public_ip : instance.public_ip]
  ssh_rules  = length(var.ssh_cidrs) == 0 ? [] : [{ description = "ssh", protocol = "tcp", from_port = 22, to_port = 22, cidr_blocks = var.ssh_cidrs }]
}

resource "aws_security_group" "this" {
  # checkov:skip=CKV_AWS_382:Hosts pull images (GHCR), packages and releases (S3, SSM) from the internet, and LiveKit sends media to any client address and port; egress cannot be narrowed to fixed addresses. Data subnets have no route out, and ingress is exactly the role's ports.
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
# reports and exec output, read only its own role's parameters, and (its Docker engine's awslogs
# driver) write log streams of its own role's log group only.
resource "aws_iam_role_policy" "this" {
  name = "${local.name}-scoped"
  role = aws_iam_role.this.id

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat([
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
      {
        # damso exec: the SSM agent writes each command's output here (and checks the bucket's encryption first)
        Sid      = "WriteExecOutput"
        Effect   = "Allow"
        Action   = "s3:PutObject"
        Resource = "${local.bucket}/${var.env}/exec/*"
      },
      {
        Sid      = "ExecOutputBucketEncryption"
        Effect   = "Allow"
        Action   = "s3:GetEncryptionConfiguration"
        Resource = local.bucket
      },
      ], var.cloudwatch_logs ? [{
        Sid      = "WriteOwnLogStreams"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = [local.log_arn, "${local.log_arn}:log-stream:*"]
    }] : [])
  })
}

# The role's containers log here through the awslogs driver, one stream per instance and container.
resource "aws_cloudwatch_log_group" "containers" {
  # checkov:skip=CKV_AWS_158:CloudWatch Logs encrypts log data at rest with its own key; a customer-managed KMS key per role adds cost and key administration for no reader we need to exclude. Known secret values are masked when damso shows lines.
  # checkov:skip=CKV_AWS_338:Retention is the environment's choice (logs.retention_days, default 30 days): application logs are for operating the service, not an audit trail.
  count = var.cloudwatch_logs ? 1 : 0

  name              = local.log_group
  retention_in_days = var.log_retention_days
  tags              = local.tags
}

# The SSM agent (shipped on Ubuntu and Deep Learning AMIs) registers the instance, so that
# damso exec runs commands through SSM Run Command without SSH.
resource "aws_iam_role_policy_attachment" "ssm" {
  role       = aws_iam_role.this.name
  policy_arn = "arn:${local.arn}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

# What the role's own containers need beyond damso's (e.g. Bedrock for the api):
# managed policies by ARN, and statements scoped by resource.
resource "aws_iam_role_policy_attachment" "managed" {
  for_each = toset(var.managed_policy_arns)

  role       = aws_iam_role.this.name
  policy_arn = each.value
}

resource "aws_iam_role_policy" "extra" {
  count = length(var.extra_policy_statements) > 0 ? 1 : 0

  name = "${local.name}-extra"
  role = aws_iam_role.this.id

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [for i, st in var.extra_policy_statements : {
      Sid      = "Extra${i}"
      Effect   = "Allow"
      Action   = st.actions
      Resource = st.resources
    }]
  })
}

resource "aws_iam_instance_profile" "this" {
  name = local.name
  role = aws_iam_role.this.name
  tags = local.tags
}

# count instances, spread over the subnets (one per availability zone): instance i in subnet i mod n.
resource "aws_instance" "this" {
  count = var.instance_count
  # checkov:skip=CKV_AWS_126:No detailed (1-minute) monitoring: it is billed per instance, and health comes from the hosts' own reports (damso status), not CloudWatch metrics.
  # checkov:skip=CKV_AWS_135:Every current instance type (t3, c7i, g5, ...) is EBS-optimized by default, where the flag changes nothing; setting it would fail for the few types that cannot be.
  ami                         = var.ami_id
  instance_type               = var.instance_type
  subnet_id                   = length(var.subnet_ids) > 0 ? var.subnet_ids[count.index % length(var.subnet_ids)] : var.subnet_id
  key_name                    = var.key_name
  vpc_security_group_ids      = [aws_security_group.this.id]
  iam_instance_profile        = aws_iam_instance_profile.this.name
  user_data                   = var.user_data == "" ? null : var.user_data
  user_data_replace_on_change = false
  tags                        = merge(local.tags, { Name = var.instance_count > 1 ? "${local.name}-${count.index}" : local.name })
  volume_tags                 = local.tags

  # IMDSv2 only. One hop: the host's reconcile unit reaches the metadata service,
  # containers on a bridge network do not (they would get the role's credentials).
  # A role whose containers call AWS APIs themselves gets 2.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = var.metadata_hop_limit
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
  count = var.associate_eip ? var.instance_count : 0

  domain   = "vpc"
  instance = aws_instance.this[count.index].id
  tags     = local.tags
}

# Hosts made before roles could have several instances keep theirs.
moved {
  from = aws_instance.this
  to   = aws_instance.this[0]
}
