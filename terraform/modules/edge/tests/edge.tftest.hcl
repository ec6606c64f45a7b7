mock_provider "aws" {}

variables {
  name              = "damso-prod"
  vpc_id            = "vpc-1"
  vpc_cidr          = "10.0.0.0/16"
  public_subnet_ids = ["subnet-a", "subnet-c"]
  domain            = "sodam.store"
  zone_id           = "Z123"
  certificate_arn   = "arn:aws:acm:ap-northeast-2:123456789012:certificate/x"
  api_instance_ids  = ["i-api0", "i-api1"]
  web_instance_ids  = ["i-web"]
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
    condition     = length(aws_lb.nlb) == 1 && aws_lb_listener.livekit_tls[0].port == 443 && aws_lb_listener.livekit_tls[0].protocol == "TLS"
    error_message = "The NLB must listen on TLS 443."
  }

  assert {
    condition     = aws_lb_listener.livekit_tls[0].ssl_policy == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    error_message = "The NLB's TLS listener must use a TLS 1.2+/1.3 policy."
  }

  assert {
    condition     = aws_lb_target_group.livekit[0].port == 7880 && aws_lb_target_group.livekit[0].preserve_client_ip == "false"
    error_message = "The NLB must reach LiveKit's signal port from its own addresses, so the host can admit the VPC only."
  }

  assert {
    condition     = aws_lb.nlb[0].enable_cross_zone_load_balancing
    error_message = "One LiveKit host: the NLB's node in the other zone must reach it (cross-zone on)."
  }

  assert {
    condition     = aws_route53_record.livekit[0].name == "prod-livekit.sodam.store"
    error_message = "LiveKit's name must be <livekit_name>.<domain>."
  }
}

run "tls_policy_headers_and_egress" {
  command = plan

  assert {
    condition     = aws_lb_listener.https.ssl_policy == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    error_message = "The HTTPS listener must use a TLS 1.2+/1.3 policy, not AWS's old default."
  }

  assert {
    condition     = aws_lb.alb.drop_invalid_header_fields
    error_message = "The ALB must drop invalid header fields."
  }

  assert {
    condition = (
      toset([for r in aws_security_group.alb.egress : [r.from_port, r.to_port, r.protocol]]) == toset([[8080, 8080, "tcp"], [3000, 3000, "tcp"]]) &&
      alltrue([for r in aws_security_group.alb.egress : r.cidr_blocks == tolist(["10.0.0.0/16"])])
    )
    error_message = "The ALB may send only to its targets' ports inside the VPC."
  }
}

run "old_tls_policies_are_refused" {
  command = plan

  variables {
    ssl_policy = "ELBSecurityPolicy-2016-08"
  }

  expect_failures = [var.ssl_policy]
}

run "every_instance_of_a_role_is_a_target" {
  command = plan

  assert {
    condition     = [for a in aws_lb_target_group_attachment.api : a.target_id] == ["i-api0", "i-api1"] && length(aws_lb_target_group_attachment.web) == 1
    error_message = "Each api and web instance must be a target of its group."
  }
}
