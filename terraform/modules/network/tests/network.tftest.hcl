mock_provider "aws" {}

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
    condition     = aws_subnet.public[*].availability_zone == ["ap-northeast-2a", "ap-northeast-2c"]
    error_message = "Public subnets should be in AZ a and c."
  }

  assert {
    condition     = aws_subnet.private[*].cidr_block == ["10.0.10.0/24"]
    error_message = "The private app subnet should be 10.0.10.0/24."
  }

  assert {
    condition     = aws_subnet.data[*].cidr_block == ["10.0.20.0/24", "10.0.21.0/24"]
    error_message = "Data subnets should be 10.0.20.0/24 and 10.0.21.0/24."
  }

  assert {
    condition     = aws_subnet.data[1].availability_zone == "ap-northeast-2c"
    error_message = "The second data subnet should be in AZ c."
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
