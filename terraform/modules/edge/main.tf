# The ALB for the console and the API (SSE-friendly timeouts), and the NLB for
# LiveKit signalling (wss:// on 443 only). Media (UDP) and ICE over TCP go
# straight to the LiveKit Elastic IP.
resource "aws_security_group" "alb" {
  # checkov:skip=CKV_AWS_260:Port 80 is open only for the HTTP listener, which answers every request with a redirect to HTTPS and forwards nothing.
  name        = "${var.name}-alb"
  description = "damso ALB: HTTP and HTTPS from anywhere"
  vpc_id      = var.vpc_id

  ingress {
    description = "http"
    protocol    = "tcp"
    from_port   = 80
    to_port     = 80
    cidr_blocks = ["0.0.0.0/0"]
  }

  ingress {
    description = "https"
    protocol    = "tcp"
    from_port   = 443
    to_port     = 443
    cidr_blocks = ["0.0.0.0/0"]
  }

  # Only to the targets' ports inside the VPC (traffic and health checks).
  egress {
    description = "to api targets"
    protocol    = "tcp"
    from_port   = 8080
    to_port     = 8080
    cidr_blocks = [var.vpc_cidr]
  }

  egress {
    description = "to web targets"
    protocol    = "tcp"
    from_port   = 3000
    to_port     = 3000
    cidr_blocks = [var.vpc_cidr]
  }
}

resource "aws_lb" "alb" {
  # checkov:skip=CKV_AWS_91:No access logs: they need a log bucket with the region's ELB log-delivery policy per env; the api and web log every request themselves.
  # checkov:skip=CKV_AWS_150:No deletion protection: the ALB holds no data and a deploy recreates it in minutes, while protection would make `damso destroy` fail half-way.
  # checkov:skip=CKV2_AWS_28:No WAF: it is billed per rule and request, and the API authenticates every request; put one in front when abuse appears.
  name                       = "${var.name}-alb"
  load_balancer_type         = "application"
  subnets                    = var.public_subnet_ids
  security_groups            = [aws_security_group.alb.id]
  idle_timeout               = 3600 # server-sent events
  drop_invalid_header_fields = true
}

resource "aws_lb_target_group" "api" {
  # checkov:skip=CKV_AWS_378:TLS ends at the ALB; from there to the api host is plain HTTP inside the VPC, to a private subnet whose security group admits only the VPC.
  name                 = "${var.name}-api"
  port                 = 8080
  protocol             = "HTTP"
  vpc_id               = var.vpc_id
  deregistration_delay = 300

  stickiness {
    type    = "lb_cookie"
    enabled = true
  }

  health_check {
    path    = "/healthz"
    matcher = "200"
  }
}

resource "aws_lb_target_group" "web" {
  name     = "${var.name}-web"
  port     = 3000
  protocol = "HTTP"
  vpc_id   = var.vpc_id

  health_check {
    path    = "/"
    matcher = "200,307"
  }
}

resource "aws_lb_target_group_attachment" "api" {
  count            = length(var.api_instance_ids)
  target_group_arn = aws_lb_target_group.api.arn
  target_id        = var.api_instance_ids[count.index]
  port             = 8080
}

resource "aws_lb_target_group_attachment" "web" {
  count            = length(var.web_instance_ids)
  target_group_arn = aws_lb_target_group.web.arn
  target_id        = var.web_instance_ids[count.index]
  port             = 3000
}

# Edges made before roles could have several instances keep their attachments.
moved {
  from = aws_lb_target_group_attachment.api
  to   = aws_lb_target_group_attachment.api[0]
}

moved {
  from = aws_lb_target_group_attachment.web
  to   = aws_lb_target_group_attachment.web[0]
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.alb.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"
    redirect {
      port        = "443"
      protocol    = "HTTPS"
      status_code = "HTTP_301"
    }
  }
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.alb.arn
  port              = 443
  protocol          = "HTTPS"
  certificate_arn   = var.certificate_arn
  ssl_policy        = var.ssl_policy

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.web.arn
  }
}

resource "aws_lb_listener_rule" "api" {
  listener_arn = aws_lb_listener.https.arn
  priority     = 10

  condition {
    host_header {
      values = ["api.${var.domain}"]
    }
  }

  action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api.arn
  }
}

locals {
  livekit = var.livekit_instance_id == "" ? 0 : 1
}

resource "aws_lb" "nlb" {
  # checkov:skip=CKV_AWS_91:No access logs: TLS access logs need a log bucket with the region's ELB log-delivery policy per env; LiveKit logs every session itself.
  # checkov:skip=CKV_AWS_150:No deletion protection: the NLB holds no data and a deploy recreates it in minutes, while protection would make `damso destroy` fail half-way.
  count                            = local.livekit
  name                             = "${var.name}-nlb"
  load_balancer_type               = "network"
  subnets                          = var.public_subnet_ids
  enable_cross_zone_load_balancing = true # one LiveKit host: the node in the other zone must reach it
}

# The NLB terminates TLS and connects to LiveKit's signal port from its own
# private addresses (no client IP preservation), so the LiveKit host can admit
# that port from the VPC only.
resource "aws_lb_target_group" "livekit" {
  count              = local.livekit
  name               = "${var.name}-livekit"
  port               = var.livekit_signal_port
  protocol           = "TCP"
  vpc_id             = var.vpc_id
  preserve_client_ip = "false"
}

resource "aws_lb_target_group_attachment" "livekit" {
  count            = local.livekit
  target_group_arn = aws_lb_target_group.livekit[0].arn
  target_id        = var.livekit_instance_id
  port             = var.livekit_signal_port
}

resource "aws_lb_listener" "livekit_tls" {
  count             = local.livekit
  load_balancer_arn = aws_lb.nlb[0].arn
  port              = 443
  protocol          = "TLS"
  certificate_arn   = var.certificate_arn
  ssl_policy        = var.ssl_policy

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.livekit[0].arn
  }
}

resource "aws_route53_record" "alb" {
  for_each = var.zone_id == "" ? toset([]) : toset([var.domain, "api.${var.domain}"])
  zone_id  = var.zone_id
  name     = each.value
  type     = "A"

  alias {
    name                   = aws_lb.alb.dns_name
    zone_id                = aws_lb.alb.zone_id
    evaluate_target_health = true
  }
}

resource "aws_route53_record" "livekit" {
  count   = var.zone_id == "" ? 0 : local.livekit
  zone_id = var.zone_id
  name    = "${var.livekit_name}.${var.domain}"
  type    = "A"

  alias {
    name                   = aws_lb.nlb[0].dns_name
    zone_id                = aws_lb.nlb[0].zone_id
    evaluate_target_health = true
  }
}
