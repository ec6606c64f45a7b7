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
