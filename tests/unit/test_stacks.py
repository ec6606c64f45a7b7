from pathlib import Path

import pytest

from damso_ops import config
from damso_ops.deploy import stacks
from damso_ops.deploy import terraform
from damso_ops.errors import ConfigError

BASE = """
[registry]
host = "registry.test"
namespace = "n"
[repositories.r]
url = "u"
[services.api]
repo = "r"
image = "api"
"""

SHARED = {
    "vpc_id": "vpc-1", "vpc_cidr": "10.0.0.0/16", "artifact_bucket": "b",
    "public_subnet_ids": ["pub-a", "pub-c"], "private_subnet_ids": ["priv"], "data_subnet_ids": ["d1", "d2"],
}  # fmt: skip


def cfg(env_toml: str):
    return config.parse(BASE + env_toml, Path("/p/damso.toml"))


ENV = """
[environments.prod]
domain = "sodam.store"
certificate_arn = "arn:aws:acm:ap-northeast-2:123456789012:certificate/0a1b2c3d-4e5f-6789-abcd-ef0123456789"
stacks = ["edge", "data"]
[environments.prod.roles.api]
ami = "ami-1"
instance_type = "t3.medium"
volume_size = 30
services = ["api"]
[environments.prod.roles.web]
ami = "ami-1"
[environments.prod.roles.livekit]
ami = "ami-2"
"""


def test_layers_put_shared_first_and_edge_last():
    c = cfg(ENV)
    names = stacks.stack_names("prod", c.environments["prod"])
    assert names == ["shared", "api", "web", "livekit", "edge", "data"]
    assert stacks.layers(names) == [["shared"], ["api", "web", "livekit"], ["edge", "data"]]


def test_role_stack_inputs_come_from_config_and_shared_outputs():
    c = cfg(ENV)
    values = stacks.inputs(c, "prod", "api", {"shared": SHARED}, {"api": "#!/bin/bash"})
    assert values == {
        "project": "damso", "env": "prod", "region": "ap-northeast-2", "vpc_id": "vpc-1", "vpc_cidr": "10.0.0.0/16",
        "artifact_bucket": "b", "role": "api", "subnet_id": "priv", "subnet_ids": ["priv"], "instance_count": 1,
        "ami_id": "ami-1", "instance_type": "t3.medium", "volume_size": 30, "user_data": "#!/bin/bash", "ssh_cidrs": [],
        "metadata_hop_limit": 1, "managed_policy_arns": [], "extra_policy_statements": [],
        "cloudwatch_logs": True, "log_retention_days": 30,
    }  # fmt: skip
    livekit = stacks.inputs(c, "prod", "livekit", {"shared": SHARED}, {"livekit": ""})
    assert livekit["subnet_id"] == "pub-a" and livekit["subnet_ids"] == ["pub-a", "pub-c"]  # LiveKit is public


def test_edge_and_data_inputs():
    c = cfg(ENV)
    outputs = {"shared": SHARED, "api": {"instance_id": "i-a", "instance_ids": ["i-a", "i-b"], "security_group_id": "sg-a"},
               "web": {"instance_id": "i-w", "security_group_id": "sg-w"}, "livekit": {"instance_id": "i-l"}}  # fmt: skip
    edge = stacks.inputs(c, "prod", "edge", outputs, {})
    assert edge["api_instance_ids"] == ["i-a", "i-b"] and edge["web_instance_ids"] == ["i-w"]
    assert edge["livekit_instance_id"] == "i-l" and edge["livekit_signal_port"] == 7880
    assert edge["certificate_arn"] == "arn:aws:acm:ap-northeast-2:123456789012:certificate/0a1b2c3d-4e5f-6789-abcd-ef0123456789" and edge["public_subnet_ids"] == ["pub-a", "pub-c"]
    data = stacks.inputs(c, "prod", "data", outputs, {})
    assert data["data_subnet_ids"] == ["d1", "d2"] and data["create_redis_parameter_group"] is True
    assert data["client_security_group_ids"] == []  # no role names a database here
    c = cfg(ENV.replace('services = ["api"]', 'services = ["api"]\nsecrets = ["DATABASE_URL"]'))
    assert stacks.inputs(c, "prod", "data", outputs, {})["client_security_group_ids"] == ["sg-a"]


def test_only_the_sandbox_data_stack_drops_deletion_protection_and_the_parameter_group():
    """What the data stack gets in a sandbox and nowhere else: the emulated database may be
    deleted by `damso destroy`, and moto hangs on parameter groups. The Redis replication group
    keeps its production shape (TLS in transit) in both."""
    outputs = {"shared": SHARED}
    prod = stacks.inputs(cfg(ENV), "prod", "data", outputs, {})
    sandbox = stacks.inputs(cfg(ENV.replace("[environments.prod]\n", "[environments.prod]\nsandbox = true\n")), "prod", "data", outputs, {})
    assert (prod["db_deletion_protection"], prod["create_redis_parameter_group"]) == (True, True)
    assert (sandbox["db_deletion_protection"], sandbox["create_redis_parameter_group"]) == (False, False)
    assert {k: v for k, v in sandbox.items() if k not in ("db_deletion_protection", "create_redis_parameter_group")} == {
        k: v for k, v in prod.items() if k not in ("db_deletion_protection", "create_redis_parameter_group")}
    assert sandbox["redis_tls"] is True


def test_zones_access_and_tls_only_transport_reach_the_stacks():
    c = cfg(ENV.replace('services = ["api"]', 'services = ["api"]\n[environments.prod.roles.api.aws]\ncontainers = true\n'
                        'managed_policies = ["arn:aws:iam::aws:policy/AmazonBedrockReadOnly"]\n'
                        'statements = [{ actions = ["bedrock:InvokeModel"], resources = ["arn:aws:bedrock:*::foundation-model/*"] }]'))
    shared = stacks.inputs(c, "prod", "shared", {}, {})
    assert shared["availability_zones"] == ["ap-northeast-2a", "ap-northeast-2c"] and shared["deny_insecure_transport"] is True
    assert shared["lifecycle_rules"] is True  # old versions expire (the sandbox's emulator runs no rule)
    assert shared["force_destroy_artifacts"] is False  # destroying prod's network stops at its releases (the sandbox's go too)
    sandbox = cfg(ENV.replace("[environments.prod]\n", "[environments.prod]\nsandbox = true\n"))
    assert stacks.inputs(sandbox, "prod", "shared", {}, {})["force_destroy_artifacts"] is True
    assert stacks.inputs(sandbox, "prod", "shared", {}, {})["lifecycle_rules"] is False
    api = stacks.inputs(c, "prod", "api", {"shared": SHARED}, {"api": ""})
    assert api["metadata_hop_limit"] == 2 and api["managed_policy_arns"] == ["arn:aws:iam::aws:policy/AmazonBedrockReadOnly"]
    assert api["extra_policy_statements"] == [{"actions": ["bedrock:InvokeModel"], "resources": ["arn:aws:bedrock:*::foundation-model/*"]}]
    assert stacks.inputs(c, "prod", "web", {"shared": SHARED}, {"web": ""})["metadata_hop_limit"] == 1
    west = cfg(ENV.replace("[environments.prod]\n", '[environments.prod]\nregion = "us-west-2"\n').replace("ap-northeast-2:", "us-west-2:"))
    inputs = [stacks.inputs(west, "prod", s, {"shared": SHARED, "api": {"instance_id": "i"}, "web": {"instance_id": "w"}}, {"api": "", "web": "", "livekit": ""})
              for s in ("shared", "api", "web", "livekit", "edge")]  # fmt: skip
    assert "ap-northeast-2" not in repr(inputs) and inputs[0]["availability_zones"] == []  # the region's first two


def test_edge_needs_certificate_and_roles():
    with pytest.raises(ConfigError, match="environments.prod.certificate_arn is required by the edge stack"):
        cfg(ENV.replace('certificate_arn = "arn:aws:acm:ap-northeast-2:123456789012:certificate/0a1b2c3d-4e5f-6789-abcd-ef0123456789"\n', ""))


def test_unknown_stack_and_reference_checks():
    c = cfg(ENV.replace('stacks = ["edge", "data"]', 'stacks = ["nope"]'))
    with pytest.raises(ConfigError, match="unknown stack 'nope'"):
        stacks.stack_names("prod", c.environments["prod"])
    c = cfg(ENV + '[environments.prod.roles.agent]\nami = "ami-1"\nenv = { X = "${data.redis_endpoint}", Y = "${api.private_ip}" }\n')
    stacks.check_references("prod", c.environments["prod"])  # both exist


def test_every_stack_declares_what_damso_reads():
    assert {"vpc_id", "vpc_cidr", "artifact_bucket", "public_subnet_ids", "private_subnet_ids", "data_subnet_ids"} <= stacks.declared_outputs("shared")
    for role_stack in ("api", "web", "agent", "livekit"):
        assert {"instance_id", "private_ip"} <= stacks.declared_outputs(role_stack)


def test_backend_and_override_for_the_emulator():
    text = terraform.backend_hcl("state", "prod/api.tfstate", "ap-northeast-2", "http://127.0.0.1:5")
    assert 'key = "prod/api.tfstate"' in text and "use_lockfile = true" in text and 'endpoints = { s3 = "http://127.0.0.1:5" }' in text
    assert "endpoints" not in terraform.backend_hcl("state", "k", "r", None)
    override = terraform.override_tf("http://127.0.0.1:5")
    assert 'ssm = "http://127.0.0.1:5"' in override and "s3_use_path_style           = true" in override
