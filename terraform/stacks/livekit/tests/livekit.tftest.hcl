# The opened ports are the ports livekit.yaml (and Caddy, with tls) listen on.
mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_region" {
    defaults = { name = "us-west-2" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
}

variables {
  project         = "damso"
  env             = "dev"
  region          = "us-west-2"
  role            = "livekit"
  vpc_id          = "vpc-1"
  vpc_cidr        = "10.0.0.0/16"
  subnet_id       = "subnet-public-1"
  artifact_bucket = "damso-dev-artifacts"
  ami_id          = "ami-1"
  instance_type   = "c7i.xlarge"
  volume_size     = 30
  user_data       = "#!/bin/sh\n"
}

run "with_tls_signalling_is_closed_and_caddy_is_open" {
  command = plan

  variables {
    tls = true
  }

  assert {
    condition = toset([for r in module.host.ingress_rules : "${r.protocol}/${r.from_port}-${r.to_port}"]) == toset([
      "tcp/7883-7883",   # rtc.tcp_port: ICE over TCP
      "udp/50000-60000", # rtc.port_range_start..end
      "tcp/80-80",       # Caddy: ACME
      "tcp/443-443",     # Caddy: wss://
    ])
    error_message = "With tls, exactly rtc.tcp_port, the UDP range, 80 and 443 are open: no 7880 (Caddy reaches it on 127.0.0.1) and no 7881."
  }

  assert {
    condition     = alltrue([for r in module.host.ingress_rules : r.from_port != 7880 && r.to_port != 7880])
    error_message = "The signal port must not be opened with tls on."
  }
}

run "without_tls_signalling_is_open_to_signal_cidrs" {
  command = plan

  variables {
    signal_cidrs = ["10.0.0.0/16"]
  }

  assert {
    condition = toset([for r in module.host.ingress_rules : "${r.protocol}/${r.from_port}-${r.to_port}"]) == toset([
      "tcp/7880-7880", "tcp/7883-7883", "udp/50000-60000",
    ])
    error_message = "Without tls: the signal port, rtc.tcp_port and the UDP range, nothing else."
  }

  assert {
    condition     = one([for r in module.host.ingress_rules : r.cidr_blocks if r.from_port == 7880]) == tolist(["10.0.0.0/16"])
    error_message = "The signal port must be open to signal_cidrs only (the VPC when an NLB terminates TLS)."
  }
}

run "ports_follow_the_config" {
  command = plan

  variables {
    signal_port       = 7890
    tcp_fallback_port = 7891
    udp_port_start    = 40000
    udp_port_end      = 40100
  }

  assert {
    condition = toset([for r in module.host.ingress_rules : "${r.protocol}/${r.from_port}-${r.to_port}"]) == toset([
      "tcp/7890-7890", "tcp/7891-7891", "udp/40000-40100",
    ])
    error_message = "The opened ports must be the configured ones."
  }
}
