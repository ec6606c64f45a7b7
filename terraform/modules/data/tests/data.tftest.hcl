mock_provider "aws" {}

variables {
  name            = "damso-prod"
  vpc_id          = "vpc-1"
  data_subnet_ids = ["subnet-20", "subnet-21"]
  client_cidrs    = ["10.0.0.0/16"]
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
}

run "redis_noeviction_for_bullmq" {
  command = plan

  assert {
    condition     = one(aws_elasticache_parameter_group.noeviction[0].parameter).value == "noeviction"
    error_message = "BullMQ needs maxmemory-policy noeviction."
  }

  assert {
    condition     = aws_elasticache_cluster.redis.engine_version == "7.1"
    error_message = "Redis 7.1 with an explicit version."
  }
}

run "sandbox_skips_the_parameter_group" {
  command = plan

  variables {
    create_redis_parameter_group = false
  }

  assert {
    condition     = length(aws_elasticache_parameter_group.noeviction) == 0 && aws_elasticache_cluster.redis.parameter_group_name == "default.redis7"
    error_message = "Without the parameter group the default one is used."
  }
}
