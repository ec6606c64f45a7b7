mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_region" {
    defaults = { name = "ap-northeast-2" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
}

variables {
  project         = "damso"
  env             = "prod"
  role            = "api"
  vpc_id          = "vpc-1"
  subnet_id       = "subnet-1"
  ami_id          = "ami-1"
  instance_type   = "t3.medium"
  volume_size     = 30
  artifact_bucket = "damso-prod-artifacts"
  ingress_rules   = [{ description = "api", protocol = "tcp", from_port = 8080, to_port = 8080, cidr_blocks = ["10.0.0.0/16"] }]
}

run "ssh_closed_by_default_and_imdsv2_required" {
  command = plan

  assert {
    condition     = length([for r in aws_security_group.this.ingress : r if r.from_port == 22]) == 0
    error_message = "SSH must be closed when ssh_cidrs is empty."
  }

  assert {
    condition     = length(aws_security_group.this.ingress) == 1
    error_message = "Only the given ingress rules may be open."
  }

  assert {
    condition     = aws_instance.this[0].metadata_options[0].http_tokens == "required"
    error_message = "IMDSv2 must be required."
  }

  assert {
    condition     = aws_instance.this[0].metadata_options[0].http_put_response_hop_limit == 1
    error_message = "The metadata hop limit must default to 1: containers must not reach the instance role's credentials."
  }

  assert {
    condition     = length(aws_iam_role_policy_attachment.managed) == 0 && length(aws_iam_role_policy.extra) == 0
    error_message = "No IAM permission beyond damso's own unless the role asks for it."
  }

  assert {
    condition     = aws_instance.this[0].root_block_device[0].encrypted && aws_instance.this[0].root_block_device[0].volume_size == 30
    error_message = "The root volume must be encrypted and sized from the variable."
  }

  assert {
    condition     = length(aws_eip.this) == 0
    error_message = "No Elastic IP unless asked."
  }
}

run "ssh_open_only_to_given_cidrs" {
  command = plan

  variables {
    ssh_cidrs     = ["203.0.113.7/32"]
    associate_eip = true
  }

  assert {
    condition     = one([for r in aws_security_group.this.ingress : r.cidr_blocks if r.from_port == 22]) == tolist(["203.0.113.7/32"])
    error_message = "SSH must be open only to ssh_cidrs."
  }

  assert {
    condition     = length(aws_eip.this) == 1
    error_message = "associate_eip must create an Elastic IP."
  }
}

run "policy_scoped_to_env_and_role" {
  command = plan

  assert {
    condition     = jsondecode(aws_iam_role_policy.this.policy).Statement[0].Resource == "arn:aws:s3:::damso-prod-artifacts/prod/*"
    error_message = "Release reads must be scoped to the env's prefix."
  }

  assert {
    condition     = jsondecode(aws_iam_role_policy.this.policy).Statement[2].Resource == "arn:aws:s3:::damso-prod-artifacts/prod/reports/*"
    error_message = "Writes must be scoped to the env's reports."
  }

  assert {
    condition = jsondecode(aws_iam_role_policy.this.policy).Statement[3].Resource == [
      "arn:aws:ssm:ap-northeast-2:123456789012:parameter/damso/prod/api",
      "arn:aws:ssm:ap-northeast-2:123456789012:parameter/damso/prod/api/*",
    ]
    error_message = "Parameter reads must be scoped to the role's prefix."
  }
}

run "containers_using_aws_apis_get_two_hops" {
  command = plan

  variables {
    metadata_hop_limit = 2
  }

  assert {
    condition     = aws_instance.this[0].metadata_options[0].http_put_response_hop_limit == 2 && aws_instance.this[0].metadata_options[0].http_tokens == "required"
    error_message = "metadata_hop_limit = 2 must give two hops, still IMDSv2 only."
  }
}

run "hop_limit_is_one_or_two" {
  command = plan

  variables {
    metadata_hop_limit = 3
  }

  expect_failures = [var.metadata_hop_limit]
}

run "extra_permissions_from_the_role" {
  command = plan

  variables {
    managed_policy_arns = ["arn:aws:iam::aws:policy/AmazonBedrockLimitedAccess"]
    extra_policy_statements = [
      { actions = ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"], resources = ["arn:aws:bedrock:*::foundation-model/*"] },
      { actions = ["transcribe:StartStreamTranscription"], resources = ["*"] },
    ]
  }

  assert {
    condition     = aws_iam_role_policy_attachment.managed["arn:aws:iam::aws:policy/AmazonBedrockLimitedAccess"].policy_arn == "arn:aws:iam::aws:policy/AmazonBedrockLimitedAccess"
    error_message = "Managed policies must be attached to the instance role."
  }

  assert {
    condition = jsondecode(aws_iam_role_policy.extra[0].policy).Statement == [
      { Sid = "Extra0", Effect = "Allow", Action = ["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"], Resource = ["arn:aws:bedrock:*::foundation-model/*"] },
      { Sid = "Extra1", Effect = "Allow", Action = ["transcribe:StartStreamTranscription"], Resource = ["*"] },
    ]
    error_message = "Each extra statement must allow exactly its actions on its resources."
  }

  assert {
    condition     = jsondecode(aws_iam_role_policy.this.policy).Statement[0].Resource == "arn:aws:s3:::damso-prod-artifacts/prod/*"
    error_message = "damso's own scoped policy must stay as it is."
  }
}

run "no_administrator_policy" {
  command = plan

  variables {
    managed_policy_arns = ["arn:aws:iam::aws:policy/AdministratorAccess"]
  }

  expect_failures = [var.managed_policy_arns]
}

run "no_bare_star_or_iam_actions" {
  command = plan

  variables {
    extra_policy_statements = [
      { actions = ["*"], resources = ["*"] },
      { actions = ["iam:PassRole"], resources = ["*"] },
    ]
  }

  expect_failures = [var.extra_policy_statements]
}

run "several_instances_spread_over_the_subnets" {
  command = plan

  variables {
    instance_count = 3
    subnet_ids     = ["subnet-a", "subnet-c"]
  }

  assert {
    condition     = [for i in aws_instance.this : i.subnet_id] == ["subnet-a", "subnet-c", "subnet-a"]
    error_message = "Instances must be spread over the subnets, one availability zone after the other."
  }

  assert {
    condition     = length(aws_instance.this) == 3 && length(aws_eip.this) == 0
    error_message = "instance_count must make that many instances (and no Elastic IP without associate_eip)."
  }
}

run "container_logs_group_and_ssm_agent" {
  command = apply

  assert {
    condition     = aws_cloudwatch_log_group.containers[0].name == "/damso/damso-prod/api" && aws_cloudwatch_log_group.containers[0].retention_in_days == 30
    error_message = "One log group per environment and role, kept 30 days by default."
  }

  assert {
    condition = one([for st in jsondecode(aws_iam_role_policy.this.policy).Statement : st if st.Sid == "WriteOwnLogStreams"]) == {
      Sid    = "WriteOwnLogStreams"
      Effect = "Allow"
      Action = ["logs:CreateLogStream", "logs:PutLogEvents"]
      Resource = [
        "arn:aws:logs:ap-northeast-2:123456789012:log-group:/damso/damso-prod/api",
        "arn:aws:logs:ap-northeast-2:123456789012:log-group:/damso/damso-prod/api:log-stream:*",
      ]
    }
    error_message = "The host may create and write log streams of its own group, nothing else in CloudWatch Logs."
  }

  assert {
    condition     = one([for st in jsondecode(aws_iam_role_policy.this.policy).Statement : st.Resource if st.Sid == "WriteExecOutput"]) == "arn:aws:s3:::damso-prod-artifacts/prod/exec/*"
    error_message = "The SSM agent may write damso exec's output under the env's exec prefix only."
  }

  assert {
    condition     = aws_iam_role_policy_attachment.ssm.policy_arn == "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
    error_message = "The SSM agent's managed policy must be attached (damso exec)."
  }

  assert {
    condition     = output.log_group == "/damso/damso-prod/api"
    error_message = "The log group is an output (damso logs reads it from the state)."
  }
}

run "cloudwatch_logs_off" {
  command = apply

  variables {
    cloudwatch_logs    = false
    log_retention_days = 365
  }

  assert {
    condition     = length(aws_cloudwatch_log_group.containers) == 0 && output.log_group == ""
    error_message = "No log group when CloudWatch Logs is off."
  }

  assert {
    condition     = length([for st in jsondecode(aws_iam_role_policy.this.policy).Statement : st if startswith(st.Sid, "WriteOwnLog")]) == 0
    error_message = "No CloudWatch Logs permission when it is off."
  }
}
