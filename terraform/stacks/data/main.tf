# PostgreSQL 16 and Redis 7.1 for the api and agent hosts.
module "data" {
  source                       = "../../modules/data"
  name                         = "${var.project}-${var.env}"
  vpc_id                       = var.vpc_id
  data_subnet_ids              = var.data_subnet_ids
  client_cidrs                 = [var.vpc_cidr]
  create_redis_parameter_group = var.create_redis_parameter_group
}
