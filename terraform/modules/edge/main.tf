# The ALB for the console and the API (SSE-friendly timeouts), and the NLB for
# LiveKit signalling. Media (UDP) goes straight to the LiveKit Elastic IP.
resource "aws_security_group" "alb" {
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

  egress {
    description = "to targets"
    protocol    = "-1"
    from_port   = 0
    to_port     = 0
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_lb" "alb" {
  name               = "${var.name}-alb"
  load_balancer_type = "application"
  subnets            = var.public_subnet_ids
  security_groups    = [aws_security_group.alb.id]
  idle_timeout       = 3600 # server-sent events
}

resource "aws_lb_target_group" "api" {
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
  target_group_arn = aws_lb_target_group.api.arn
  target_id        = var.api_instance_id
  port             = 8080
}

resource "aws_lb_target_group_attachment" "web" {
  target_group_arn = aws_lb_target_group.web.arn
  target_id        = var.web_instance_id
  port             = 3000
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
  count              = local.livekit
  name               = "${var.name}-nlb"
  load_balancer_type = "network"
  subnets            = var.public_subnet_ids
}

resource "aws_lb_target_group" "livekit" {
  count    = local.livekit
  name     = "${var.name}-livekit"
  port     = 7880
  protocol = "TCP"
  vpc_id   = var.vpc_id
}

resource "aws_lb_target_group_attachment" "livekit" {
  count            = local.livekit
  target_group_arn = aws_lb_target_group.livekit[0].arn
  target_id        = var.livekit_instance_id
  port             = 7880
}

resource "aws_lb_listener" "livekit_tls" {
  count             = local.livekit
  load_balancer_arn = aws_lb.nlb[0].arn
  port              = 443
  protocol          = "TLS"
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.livekit[0].arn
  }
}

resource "aws_lb_listener" "livekit_tcp" {
  count             = local.livekit
  load_balancer_arn = aws_lb.nlb[0].arn
  port              = 7880
  protocol          = "TCP"

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
