mock_provider "aws" {
  # Unsorted on purpose: the module takes the first two by name.
  mock_data "aws_availability_zones" {
    defaults = { names = ["xx-test-1c", "xx-test-1a", "xx-test-1b"] }
  }
  mock_resource "aws_cloudwatch_log_group" {
    defaults = { arn = "arn:aws:logs:xx-test-1:123456789012:log-group:/damso/damso-test/vpc-flow-logs" }
  }
  mock_resource "aws_iam_role" {
    defaults = { arn = "arn:aws:iam::123456789012:role/damso-test-vpc-flow-logs" }
  }
}

variables {
  name = "damso-test"
}

run "defaults_match_v3_layout" {
  command = plan

  assert {
    condition     = aws_vpc.this.cidr_block == "10.0.0.0/16"
    error_message = "VPC CIDR should default to 10.0.0.0/16."
  }

  assert {
    condition     = aws_subnet.public[*].cidr_block == ["10.0.1.0/24", "10.0.2.0/24"]
    error_message = "Public subnets should be 10.0.1.0/24 and 10.0.2.0/24."
  }

  assert {
    condition     = aws_subnet.public[*].availability_zone == ["xx-test-1a", "xx-test-1b"]
    error_message = "Without availability_zones, public subnets go to the region's first two zones by name."
  }

  assert {
    condition     = aws_subnet.private[*].cidr_block == ["10.0.10.0/24", "10.0.11.0/24"]
    error_message = "The private app subnets should be 10.0.10.0/24 and 10.0.11.0/24, one per availability zone."
  }

  assert {
    condition     = aws_subnet.data[*].cidr_block == ["10.0.20.0/24", "10.0.21.0/24"]
    error_message = "Data subnets should be 10.0.20.0/24 and 10.0.21.0/24."
  }

  assert {
    condition     = aws_subnet.data[1].availability_zone == "xx-test-1b"
    error_message = "The second data subnet should be in the second zone."
  }

  assert {
    condition     = length(aws_nat_gateway.this) == 1 && length(aws_eip.nat) == 1 && length(aws_route.private_nat) == 1
    error_message = "One NAT gateway with an EIP and a private default route is expected."
  }

  assert {
    condition     = alltrue([for s in aws_subnet.private : s.map_public_ip_on_launch != true])
    error_message = "Private subnets must not map public IPs."
  }
}

run "nat_can_be_turned_off" {
  command = plan

  variables {
    enable_nat_gateway = false
  }

  assert {
    condition     = length(aws_nat_gateway.this) == 0 && length(aws_eip.nat) == 0 && length(aws_route.private_nat) == 0
    error_message = "No NAT gateway, EIP or NAT route when enable_nat_gateway is false."
  }
}

run "zones_come_from_the_variable_and_nothing_names_a_region" {
  command = plan

  variables {
    availability_zones = ["us-west-2b", "us-west-2d"]
  }

  assert {
    condition     = length(data.aws_availability_zones.available) == 0
    error_message = "Given zones, the module must not look any up."
  }

  assert {
    condition     = aws_subnet.public[*].availability_zone == ["us-west-2b", "us-west-2d"] && aws_subnet.data[*].availability_zone == ["us-west-2b", "us-west-2d"]
    error_message = "Subnet i must go to availability_zones[i]."
  }

  assert {
    condition     = aws_subnet.private[0].availability_zone == "us-west-2b" && output.availability_zones == tolist(["us-west-2b", "us-west-2d"])
    error_message = "The private subnet goes to the first zone, and the zones are an output."
  }
}

run "one_zone_is_refused" {
  command = plan

  variables {
    availability_zones = ["us-west-2a"]
  }

  expect_failures = [var.availability_zones]
}

run "default_security_group_admits_and_sends_nothing" {
  # The rule sets are only known after apply (against the mock provider here).
  command = apply

  assert {
    condition     = aws_default_security_group.this.vpc_id == aws_vpc.this.id
    error_message = "The VPC's default security group must be managed."
  }

  assert {
    condition     = length(aws_default_security_group.this.ingress) == 0 && length(aws_default_security_group.this.egress) == 0
    error_message = "The default security group must have no rules."
  }
}

run "flow_logs_on_by_default_to_cloudwatch" {
  command = plan

  assert {
    condition     = length(aws_flow_log.this) == 1 && aws_flow_log.this[0].traffic_type == "ALL" && aws_flow_log.this[0].log_destination_type == "cloud-watch-logs"
    error_message = "Flow logs (ALL traffic) must go to CloudWatch Logs by default."
  }

  assert {
    condition     = aws_cloudwatch_log_group.flow_logs[0].retention_in_days == 365
    error_message = "The flow-log group keeps records a year by default."
  }

  assert {
    condition     = jsondecode(aws_iam_role.flow_logs[0].assume_role_policy).Statement[0].Principal.Service == "vpc-flow-logs.amazonaws.com"
    error_message = "Only the flow-log service may assume the flow-log role."
  }
}

run "flow_logs_can_be_turned_off" {
  command = plan

  variables {
    flow_logs = false
  }

  assert {
    condition     = length(aws_flow_log.this) == 0 && length(aws_cloudwatch_log_group.flow_logs) == 0 && length(aws_iam_role.flow_logs) == 0
    error_message = "flow_logs = false must create no flow log, log group or role."
  }
}
