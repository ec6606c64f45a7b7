output "postgres_endpoint" {
  value = module.data.postgres_endpoint
}

output "postgres_port" {
  value = module.data.postgres_port
}

output "postgres_secret_arn" {
  value = module.data.postgres_secret_arn
}

output "redis_endpoint" {
  value = module.data.redis_endpoint
}

output "redis_port" {
  value = module.data.redis_port
}

output "redis_replication_group_id" {
  value = module.data.redis_replication_group_id
}
