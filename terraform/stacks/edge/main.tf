# The public edge: ALB for the console and the API, NLB for LiveKit signalling.
module "edge" {
  source              = "../../modules/edge"
  name                = "${var.project}-${var.env}"
  vpc_id              = var.vpc_id
  vpc_cidr            = var.vpc_cidr
  public_subnet_ids   = var.public_subnet_ids
  domain              = var.domain
  zone_id             = var.zone_id
  certificate_arn     = var.certificate_arn
  api_instance_ids    = var.api_instance_ids
  web_instance_ids    = var.web_instance_ids
  livekit_instance_id = var.livekit_instance_id
  livekit_name        = "${var.env}-livekit"
  livekit_signal_port = var.livekit_signal_port
}
