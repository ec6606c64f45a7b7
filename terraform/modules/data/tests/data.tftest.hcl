mock_provider "aws" {}

variables {
  name                      = "damso-prod"
  vpc_id                    = "vpc-1"
  data_subnet_ids           = ["subnet-20", "subnet-21"]
  client_security_group_ids = ["sg-api", "sg-agent"]
}

run "postgres_without_a_password_in_state" {
  command = plan

  assert {
    condition     = aws_db_instance.postgres.manage_master_user_password && aws_db_instance.postgres.password == null
    error_message = "RDS must manage the master password; none may be in state."
  }

  assert {
    condition     = aws_db_instance.postgres.engine_version == "16" && aws_db_instance.postgres.storage_encrypted
    error_message = "PostgreSQL 16, encrypted."
  }

  assert {
    condition     = one([for p in aws_db_parameter_group.postgres.parameter : p.value if p.name == "rds.force_ssl"]) == "1"
    error_message = "PostgreSQL must refuse connections without TLS."
  }

  assert {
    condition     = aws_db_instance.postgres.backup_window == "17:00-18:00" && aws_db_instance.postgres.maintenance_window == "sun:19:00-sun:20:00"
    error_message = "The backup and maintenance windows must stay as they were."
  }
}

run "data_admits_only_the_app_roles_security_groups" {
  command = plan

  assert {
    condition = jsonencode({ for r in aws_security_group.data.ingress : tostring(r.from_port) => sort(r.security_groups) }) == jsonencode({
      "5432" = ["sg-agent", "sg-api"]
      "6379" = ["sg-agent", "sg-api"]
    })
    error_message = "PostgreSQL and Redis must admit exactly the given security groups."
  }

  assert {
    condition     = alltrue([for r in aws_security_group.data.ingress : try(length(r.cidr_blocks), 0) == 0])
    error_message = "No CIDR may reach the data services when security groups are given."
  }
}

run "the_vpc_cidr_only_until_groups_are_given" {
  command = plan

  variables {
    client_security_group_ids = []
    client_cidrs              = ["10.0.0.0/16"]
  }

  assert {
    condition     = alltrue([for r in aws_security_group.data.ingress : r.cidr_blocks == tolist(["10.0.0.0/16"]) && try(length(r.security_groups), 0) == 0])
    error_message = "Without security groups, the given CIDRs (the VPC) are admitted."
  }
}

run "someone_must_be_able_to_connect" {
  command = plan

  variables {
    client_security_group_ids = []
  }

  expect_failures = [aws_security_group.data]
}

run "redis_tls_in_transit_encrypted_at_rest_noeviction" {
  command = plan

  assert {
    condition     = aws_elasticache_replication_group.redis.transit_encryption_enabled && aws_elasticache_replication_group.redis.transit_encryption_mode == "required"
    error_message = "Redis must require TLS in transit."
  }

  assert {
    condition     = aws_elasticache_replication_group.redis.at_rest_encryption_enabled
    error_message = "Redis must be encrypted at rest."
  }

  assert {
    condition     = aws_elasticache_replication_group.redis.auth_token == null
    error_message = "No AUTH token may be in Terraform's configuration or state: damso sets it from SSM."
  }

  assert {
    condition     = one(aws_elasticache_parameter_group.noeviction[0].parameter).value == "noeviction"
    error_message = "BullMQ needs maxmemory-policy noeviction."
  }

  assert {
    condition     = aws_elasticache_replication_group.redis.engine_version == "7.1" && aws_elasticache_replication_group.redis.num_cache_clusters == 1
    error_message = "Redis 7.1 with an explicit version, one node by default."
  }

  assert {
    condition     = aws_elasticache_replication_group.redis.snapshot_retention_limit == 1
    error_message = "Redis keeps a daily snapshot."
  }
}

run "redis_url_is_rediss_with_tls" {
  command = apply # the endpoint is known only after apply (the mock provider makes one up)

  assert {
    condition     = output.redis_url == "rediss://${aws_elasticache_replication_group.redis.primary_endpoint_address}:6379"
    error_message = "With TLS (the default) REDIS_URL is rediss://HOST:6379, without the AUTH token."
  }
}

run "redis_without_tls_when_the_config_says_so" {
  command = apply

  variables {
    redis_tls = false
  }

  assert {
    condition     = !aws_elasticache_replication_group.redis.transit_encryption_enabled
    error_message = "redis_tls = false turns transit encryption off."
  }

  assert {
    condition     = aws_elasticache_replication_group.redis.at_rest_encryption_enabled && aws_elasticache_replication_group.redis.auth_token == null
    error_message = "Without TLS Redis is still encrypted at rest, and no AUTH token is in state."
  }

  assert {
    condition     = output.redis_url == "redis://${aws_elasticache_replication_group.redis.primary_endpoint_address}:6379"
    error_message = "Without TLS REDIS_URL is redis://HOST:6379."
  }
}

run "replicas_turn_on_failover" {
  command = plan

  variables {
    redis_replicas = 1
  }

  assert {
    condition     = aws_elasticache_replication_group.redis.num_cache_clusters == 2 && aws_elasticache_replication_group.redis.automatic_failover_enabled && aws_elasticache_replication_group.redis.multi_az_enabled
    error_message = "A replica must come with Multi-AZ automatic failover."
  }
}

run "sandbox_skips_the_parameter_group" {
  command = plan

  variables {
    create_redis_parameter_group = false
  }

  assert {
    condition     = length(aws_elasticache_parameter_group.noeviction) == 0 && aws_elasticache_replication_group.redis.parameter_group_name == "default.redis7"
    error_message = "Without the parameter group the default one is used."
  }
}

run "the_database_is_protected_from_deletion_unless_told" {
  command = plan

  assert {
    condition     = aws_db_instance.postgres.deletion_protection && !aws_db_instance.postgres.skip_final_snapshot
    error_message = "By default RDS must refuse to delete the database, and keep a final snapshot."
  }
}

run "the_sandbox_may_delete_its_database" {
  command = plan

  variables {
    db_deletion_protection = false
  }

  assert {
    condition     = !aws_db_instance.postgres.deletion_protection && !aws_db_instance.postgres.skip_final_snapshot
    error_message = "Without protection (the sandbox), the final snapshot is still taken."
  }
}
