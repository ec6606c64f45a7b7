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

output "redis_url" {
  description = "REDIS_URL for the roles' env (a role refers to it as $${data.redis_url}): rediss:// or redis:// to match redis_tls, without the AUTH token."
  value       = module.data.redis_url
}

output "redis_replication_group_id" {
  value = module.data.redis_replication_group_id
}
