# PostgreSQL 16 and Redis 7.1 for the api and agent hosts: only their security
# groups get in once damso passes them (the whole VPC until then).
module "data" {
  source                       = "../../modules/data"
  name                         = "${var.project}-${var.env}"
  vpc_id                       = var.vpc_id
  data_subnet_ids              = var.data_subnet_ids
  client_security_group_ids    = var.client_security_group_ids
  client_cidrs                 = length(var.client_security_group_ids) > 0 ? [] : [var.vpc_cidr]
  create_redis_parameter_group = var.create_redis_parameter_group
  redis_tls                    = var.redis_tls
  db_deletion_protection       = var.db_deletion_protection
}
