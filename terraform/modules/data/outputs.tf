output "postgres_endpoint" {
  value = aws_db_instance.postgres.address
}

output "postgres_port" {
  value = aws_db_instance.postgres.port
}

output "postgres_secret_arn" {
  description = "The Secrets Manager secret RDS manages for the master user (an ARN, not a password)."
  value       = one(aws_db_instance.postgres.master_user_secret[*].secret_arn)
}

output "redis_endpoint" {
  value = aws_elasticache_cluster.redis.cache_nodes[0].address
}
