mock_provider "aws" {
  mock_data "aws_ami" {
    defaults = { id = "ami-0deeplearning" }
  }
}

variables {
  project   = "damso"
  env       = "dev"
  region    = "ap-northeast-2"
  vpc_id    = "vpc-1"
  subnet_id = "subnet-public-1"
  boxes = {
    alice = { instance_type = "g5.xlarge", ami_id = "ami-1", volume_size = 200, ssh_cidrs = ["203.0.113.7/32"] }
    bob   = { instance_type = "g4dn.xlarge", ami_id = "", volume_size = 100, ssh_cidrs = [], start_stopped = false }
  }
}

run "boxes_created_stopped_by_default" {
  command = plan

  assert {
    condition     = aws_ec2_instance_state.box["alice"].state == "stopped"
    error_message = "A box must be left stopped after it is created unless start_stopped = false."
  }

  assert {
    condition     = aws_ec2_instance_state.box["bob"].state == "running"
    error_message = "start_stopped = false must leave the box running."
  }

  assert {
    condition     = aws_instance.box["alice"].instance_type == "g5.xlarge" && aws_instance.box["alice"].subnet_id == "subnet-public-1"
    error_message = "Instance type and subnet come from the variables."
  }

  assert {
    condition     = aws_instance.box["alice"].root_block_device[0].encrypted && aws_instance.box["alice"].root_block_device[0].volume_size == 200
    error_message = "The root volume must be encrypted and sized from the box."
  }

  assert {
    condition     = aws_instance.box["alice"].metadata_options[0].http_tokens == "required"
    error_message = "IMDSv2 must be required."
  }
}

run "ami_looked_up_only_when_missing" {
  command = plan

  assert {
    condition     = length(data.aws_ami.deep_learning) == 1
    error_message = "A box without ami_id needs the Deep Learning AMI lookup."
  }

  assert {
    condition     = aws_instance.box["alice"].ami == "ami-1"
    error_message = "A box's own ami_id wins."
  }
}

run "ssh_open_only_to_the_box_cidrs" {
  # An empty ingress set is only known after apply (against the mock provider here).
  command = apply

  assert {
    condition     = one([for r in aws_security_group.box["alice"].ingress : r.cidr_blocks if r.from_port == 22]) == tolist(["203.0.113.7/32"])
    error_message = "SSH must be open only to the box's ssh_cidrs."
  }

  assert {
    condition     = length(aws_security_group.box["bob"].ingress) == 0
    error_message = "SSH must be closed when ssh_cidrs is empty."
  }
}

run "no_lookup_when_every_box_has_an_ami" {
  command = plan

  variables {
    boxes = {
      alice = { instance_type = "g5.xlarge", ami_id = "ami-1", volume_size = 200, ssh_cidrs = [] }
    }
  }

  assert {
    condition     = length(data.aws_ami.deep_learning) == 0
    error_message = "No AMI lookup (which finds nothing in the sandbox) when every box names its AMI."
  }
}
