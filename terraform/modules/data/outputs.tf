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
  description = "The primary endpoint; with redis_tls clients connect with TLS (rediss://) and the AUTH token."
  value       = aws_elasticache_replication_group.redis.primary_endpoint_address
}

output "redis_url" {
  description = "REDIS_URL for the apps: rediss://HOST:PORT with TLS, redis://HOST:PORT without; never the AUTH token (that stays in SSM)."
  value       = "${var.redis_tls ? "rediss" : "redis"}://${aws_elasticache_replication_group.redis.primary_endpoint_address}:${aws_elasticache_replication_group.redis.port}"
}

output "redis_port" {
  value = aws_elasticache_replication_group.redis.port
}

output "redis_replication_group_id" {
  description = "What damso passes to ElastiCache's ModifyReplicationGroup to set the AUTH token."
  value       = aws_elasticache_replication_group.redis.id
}

output "security_group_id" {
  value = aws_security_group.data.id
}
