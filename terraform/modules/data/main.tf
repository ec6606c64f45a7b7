# PostgreSQL 16 (pgvector) and Redis 7.1 in the private data subnets.
# RDS manages the master password in Secrets Manager: no password in state.
resource "aws_security_group" "data" {
  name        = "${var.name}-data"
  description = "damso data services: PostgreSQL and Redis from the VPC"
  vpc_id      = var.vpc_id

  ingress {
    description = "postgres"
    protocol    = "tcp"
    from_port   = 5432
    to_port     = 5432
    cidr_blocks = var.client_cidrs
  }

  ingress {
    description = "redis"
    protocol    = "tcp"
    from_port   = 6379
    to_port     = 6379
    cidr_blocks = var.client_cidrs
  }
}

resource "aws_db_subnet_group" "this" {
  name       = "${var.name}-data"
  subnet_ids = var.data_subnet_ids
}

resource "aws_db_instance" "postgres" {
  identifier                  = "${var.name}-postgres"
  engine                      = "postgres"
  engine_version              = "16"
  instance_class              = var.db_instance_class
  allocated_storage           = var.db_allocated_storage
  storage_type                = "gp3"
  storage_encrypted           = true
  db_name                     = var.db_name
  username                    = var.db_username
  manage_master_user_password = true
  db_subnet_group_name        = aws_db_subnet_group.this.name
  vpc_security_group_ids      = [aws_security_group.data.id]
  backup_retention_period     = 7
  backup_window               = "17:00-18:00"         # 02:00 KST
  maintenance_window          = "sun:19:00-sun:20:00" # never overlapping the backup window
  skip_final_snapshot         = false
  final_snapshot_identifier   = "${var.name}-postgres-final"
  deletion_protection         = true
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

resource "aws_elasticache_cluster" "redis" {
  cluster_id           = "${var.name}-redis"
  engine               = "redis"
  engine_version       = "7.1"
  node_type            = var.redis_node_type
  num_cache_nodes      = 1
  port                 = 6379
  parameter_group_name = var.create_redis_parameter_group ? aws_elasticache_parameter_group.noeviction[0].name : "default.redis7"
  subnet_group_name    = aws_elasticache_subnet_group.this.name
  security_group_ids   = [aws_security_group.data.id]
}
