mock_provider "aws" {}

variables {
  name              = "damso-prod"
  vpc_id            = "vpc-1"
  public_subnet_ids = ["subnet-a", "subnet-c"]
  domain            = "sodam.store"
  zone_id           = "Z123"
  certificate_arn   = "arn:aws:acm:ap-northeast-2:123456789012:certificate/x"
  api_instance_id   = "i-api"
  web_instance_id   = "i-web"
}

run "alb_routes_api_host_with_sse_settings" {
  command = plan

  assert {
    condition     = aws_lb.alb.idle_timeout == 3600
    error_message = "The ALB idle timeout must allow server-sent events (3600 s)."
  }

  assert {
    condition     = one(one(aws_lb_listener_rule.api.condition).host_header).values == toset(["api.sodam.store"])
    error_message = "api.<domain> must route to the api target group."
  }

  assert {
    condition     = aws_lb_target_group.api.deregistration_delay == "300" && aws_lb_target_group.api.stickiness[0].enabled
    error_message = "The api target group needs stickiness and a 300 s deregistration delay."
  }

  assert {
    condition     = one(aws_lb_listener.http.default_action).type == "redirect"
    error_message = "HTTP must redirect to HTTPS."
  }

  assert {
    condition     = length(aws_lb.nlb) == 0 && length(aws_route53_record.alb) == 2
    error_message = "No NLB without LiveKit; records for the domain and api.<domain>."
  }
}

run "livekit_nlb_when_an_instance_is_given" {
  command = plan

  variables {
    livekit_instance_id = "i-livekit"
    livekit_name        = "prod-livekit"
  }

  assert {
    condition     = length(aws_lb.nlb) == 1 && aws_lb_listener.livekit_tls[0].port == 443 && aws_lb_listener.livekit_tcp[0].port == 7880
    error_message = "The NLB must listen on TLS 443 and TCP 7880."
  }

  assert {
    condition     = aws_route53_record.livekit[0].name == "prod-livekit.sodam.store"
    error_message = "LiveKit's name must be <livekit_name>.<domain>."
  }
}
