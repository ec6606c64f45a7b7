# PostgreSQL 16 (pgvector) and Redis 7.1 in the private data subnets.
# No secret is in Terraform state: RDS manages the master password in Secrets
# Manager, and Redis's AUTH token is set by damso through the ElastiCache API
# from SSM after the replication group exists (the AWS provider has no
# write-only auth token argument).
locals {
  # The app roles' security groups when damso gives them; the given CIDRs otherwise.
  by_group = length(var.client_security_group_ids) > 0
  ports    = { postgres = 5432, redis = 6379 }
}

resource "aws_security_group" "data" {
  name        = "${var.name}-data"
  description = "damso data services: PostgreSQL and Redis from the app roles only"
  vpc_id      = var.vpc_id

  dynamic "ingress" {
    for_each = local.by_group ? local.ports : {}
    content {
      description     = "${ingress.key} from the app roles"
      protocol        = "tcp"
      from_port       = ingress.value
      to_port         = ingress.value
      security_groups = var.client_security_group_ids
    }
  }

  dynamic "ingress" {
    for_each = local.by_group ? {} : local.ports
    content {
      description = ingress.key
      protocol    = "tcp"
      from_port   = ingress.value
      to_port     = ingress.value
      cidr_blocks = var.client_cidrs
    }
  }
  # No egress rule: the data services only answer.

  lifecycle {
    precondition {
      condition     = local.by_group || length(var.client_cidrs) > 0
      error_message = "Give client_security_group_ids (the app roles' security groups) or client_cidrs: nothing could connect otherwise."
    }
  }
}

resource "aws_db_subnet_group" "this" {
  name       = "${var.name}-data"
  subnet_ids = var.data_subnet_ids
}

# Slow statements (over a second) and schema changes go to the PostgreSQL log,
# which is exported to CloudWatch Logs; ordinary statements (and their values) are not logged.
resource "aws_db_parameter_group" "postgres" {
  name        = "${var.name}-postgres16"
  family      = "postgres16"
  description = "damso ${var.name}: PostgreSQL 16 with slow-query and DDL logging"

  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }

  parameter {
    name  = "log_statement"
    value = "ddl"
  }

  # Clients must use TLS (the PostgreSQL 15+ default on RDS, made explicit).
  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }
}

# The exported PostgreSQL logs, with a retention (RDS would create them to keep forever).
resource "aws_cloudwatch_log_group" "postgres" {
  # checkov:skip=CKV_AWS_158:CloudWatch Logs encrypts these at rest with its own key; the slow-query and DDL log holds no secret that a customer-managed key would need to keep from an account reader.
  for_each = toset(["postgresql", "upgrade"])

  name              = "/aws/rds/instance/${var.name}-postgres/${each.key}"
  retention_in_days = var.log_retention_days
}

resource "aws_db_instance" "postgres" {
  # checkov:skip=CKV_AWS_157:Single-AZ by default for cost; set db_multi_az = true where the failover time of a restore from backup is not acceptable.
  # checkov:skip=CKV_AWS_118:No enhanced monitoring: it needs a monitoring role and is billed per instance; the basic CloudWatch metrics and the exported PostgreSQL log cover this size.
  # checkov:skip=CKV_AWS_353:No Performance Insights: db_instance_class is configurable and the smallest classes do not support it; turn it on in the console when tuning.
  identifier                          = "${var.name}-postgres"
  engine                              = "postgres"
  engine_version                      = "16"
  instance_class                      = var.db_instance_class
  allocated_storage                   = var.db_allocated_storage
  storage_type                        = "gp3"
  storage_encrypted                   = true
  db_name                             = var.db_name
  username                            = var.db_username
  manage_master_user_password         = true
  iam_database_authentication_enabled = true
  parameter_group_name                = aws_db_parameter_group.postgres.name
  db_subnet_group_name                = aws_db_subnet_group.this.name
  vpc_security_group_ids              = [aws_security_group.data.id]
  multi_az                            = var.db_multi_az
  backup_retention_period             = 7
  backup_window                       = var.db_backup_window
  maintenance_window                  = var.db_maintenance_window
  auto_minor_version_upgrade          = true
  copy_tags_to_snapshot               = true
  enabled_cloudwatch_logs_exports     = ["postgresql", "upgrade"]
  skip_final_snapshot                 = false
  final_snapshot_identifier           = "${var.name}-postgres-final"
  deletion_protection                 = var.db_deletion_protection

  depends_on = [aws_cloudwatch_log_group.postgres]
}

resource "aws_elasticache_subnet_group" "this" {
  name       = "${var.name}-redis"
  subnet_ids = var.data_subnet_ids
}

resource "aws_elasticache_parameter_group" "noeviction" {
  count  = var.create_redis_parameter_group ? 1 : 0
  name   = "${var.name}-redis7-noeviction"
  family = "redis7"

  parameter {
    name  = "maxmemory-policy"
    value = "noeviction"
  }
}

# A replication group (one node by default): only replication groups take TLS
# and AUTH. With redis_tls (the default) clients connect with rediss:// and the
# token from SSM; without it, with redis:// and no AUTH (ElastiCache allows AUTH
# only with TLS). The redis_url output says which.
resource "aws_elasticache_replication_group" "redis" {
  # checkov:skip=CKV_AWS_31:The AUTH token is required but not set here: damso sets it from SSM with ModifyReplicationGroup after apply, so it never enters Terraform state (the AWS provider has no write-only auth token). With redis_tls = false there is no AUTH: ElastiCache allows it only with TLS.
  # checkov:skip=CKV_AWS_30:Transit encryption is on by default (redis_tls); damso turns it off only when the environment's damso.toml gives data.redis_tls_off_reason (clients that accept only redis://), and Redis admits only the app roles' security groups inside the VPC.
  # checkov:skip=CKV2_AWS_50:One node by default for cost: ElastiCache replaces a failed node, and what was queued since the daily snapshot can be lost; set redis_replicas to 1 or more for Multi-AZ automatic failover.
  # checkov:skip=CKV_AWS_191:At-rest encryption uses the ElastiCache-owned key; a customer-managed KMS key adds cost and key administration for a job queue that holds no data worth a separate key policy.
  replication_group_id       = "${var.name}-redis"
  description                = "damso ${var.name} Redis (BullMQ queues)"
  engine                     = "redis"
  engine_version             = "7.1"
  node_type                  = var.redis_node_type
  num_cache_clusters         = var.redis_replicas + 1
  automatic_failover_enabled = var.redis_replicas > 0
  multi_az_enabled           = var.redis_replicas > 0
  port                       = 6379
  parameter_group_name       = var.create_redis_parameter_group ? aws_elasticache_parameter_group.noeviction[0].name : "default.redis7"
  subnet_group_name          = aws_elasticache_subnet_group.this.name
  security_group_ids         = [aws_security_group.data.id]
  at_rest_encryption_enabled = true
  transit_encryption_enabled = var.redis_tls
  transit_encryption_mode    = var.redis_tls ? "required" : null
  snapshot_retention_limit   = var.redis_snapshot_retention_days
  auto_minor_version_upgrade = true

  # The token is damso's to set and rotate (from SSM), never Terraform's.
  lifecycle {
    ignore_changes = [auth_token, auth_token_update_strategy]
  }
}
