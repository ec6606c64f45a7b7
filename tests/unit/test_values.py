"""The shapes AWS, Terraform, Docker and git accept (damso_ops/values.py): good values pass,
bad ones get a reason that names them."""

from __future__ import annotations

import pytest

from damso_ops import credentials, values

GOOD = [
    (values.region, "ap-northeast-2"), (values.region, "us-west-2"), (values.region, "us-gov-west-1"),
    (values.instance_type, "t3.small"), (values.instance_type, "g5.2xlarge"), (values.instance_type, "c7i.xlarge"),
    (values.instance_type, "m7i-flex.large"), (values.instance_type, "u-6tb1.metal"), (values.instance_type, "c6gd.metal-24xl"),
    (values.ipv4_cidr, "0.0.0.0/0"), (values.ipv4_cidr, "10.0.0.0/16"), (values.ipv4_cidr, "203.0.113.10/32"),
    (values.bucket, "damso-prod-tfstate-123456789012"), (values.bucket, "a.b-c"),
    (values.host_port, "ghcr.io"), (values.host_port, "127.0.0.1:5000"), (values.host_port, "localhost:5000"),
    (values.host_port, "[::1]:5000"), (values.host_port, "registry.test"),
    (values.docker_path, "namanmoo-damso"), (values.docker_path, "team/sub__x"),
    (values.https_url, "https://3.sodam.store/webhook/livekit"), (values.https_url, "https://10.0.0.1:8443/"),
    (values.git_url, "https://github.com/org/repo.git"), (values.git_url, "git@github.com:org/repo.git"),
    (values.git_url, "file:///srv/app.git"), (values.git_url, "../app"),
    (values.git_ref, "main"), (values.git_ref, "v3"), (values.git_ref, "refs/tags/v1.2"), (values.git_ref, "2383efc"),
    (values.platform, "linux/amd64"), (values.platform, "linux/arm64/v8"),
    (values.ami, ""), (values.ami, "ami-0abcdef1234567890"), (values.zone_id, "Z0123456789EXAMPLE"),
    (values.certificate_arn, "arn:aws:acm:ap-northeast-2:123456789012:certificate/0a1b2c3d-4e5f-6789-abcd-ef0123456789"),
]  # fmt: skip

BAD = [
    (values.region, "seoul"), (values.region, "us-east1"), (values.instance_type, "t3"), (values.instance_type, "T3.small"),
    (values.instance_type, "small.t3"), (values.ipv4_cidr, "10.0.0.0/33"), (values.ipv4_cidr, "not-a-cidr"),
    (values.ipv4_cidr, "10.0.0.1/24"), (values.ipv4_cidr, "::/0"), (values.bucket, "My_Bucket"), (values.bucket, "ab"),
    (values.bucket, "a..b"), (values.bucket, "10.0.0.1"), (values.bucket, "xn--bucket"), (values.host_port, "h"),
    (values.host_port, "not a host"), (values.host_port, "ghcr.io:0"), (values.host_port, "ghcr.io:99999"),
    (values.docker_path, "Team"), (values.docker_path, "team-"), (values.https_url, "http://x.example/"),
    (values.https_url, "https://x.example:99999/"), (values.https_url, "https:///path"), (values.git_url, "-oProxyCommand=x"),
    (values.git_url, "ftp://x/y"), (values.git_url, "https:///repo"), (values.git_url, "a b"), (values.git_ref, ""),
    (values.git_ref, "a..b"), (values.git_ref, "-x"), (values.git_ref, "v1 2"), (values.git_ref, "x.lock"),
    (values.platform, "amd64"), (values.ami, "ubuntu-24.04"), (values.zone_id, "sodam.store"),
    (values.certificate_arn, "arn:cert"), (values.linux_user, "Root User"),
]  # fmt: skip


@pytest.mark.parametrize("check, value", GOOD)
def test_good_values_pass(check, value):
    assert check(value) is None


@pytest.mark.parametrize("check, value", BAD)
def test_bad_values_get_a_reason(check, value):
    reason = check(value)
    assert reason and (repr(value) in reason or reason.startswith("is empty"))


def test_availability_zones_belong_to_the_region():
    assert values.availability_zone("ap-northeast-2a", "ap-northeast-2") is None
    assert "not an availability zone of ap-northeast-2" in values.availability_zone("us-east-1a", "ap-northeast-2")
    assert values.availability_zone("ap-northeast-2", "ap-northeast-2")


def test_open_to_all():
    assert values.open_to_all(["203.0.113.7/32", "0.0.0.0/0"]) == ["0.0.0.0/0"]
    assert values.open_to_all(["203.0.113.7/32"]) == []


def test_ssh_from_anywhere_only_when_the_config_says_so():
    from pathlib import Path

    from damso_ops import config
    from damso_ops.errors import ConfigError

    base = '[registry]\nhost = "registry.test"\nnamespace = "team"\n[repositories.app]\nurl = "file:///app.git"\n[services]\n'
    env = '[environments.dev]\nssh_cidrs = ["0.0.0.0/0"]\n[environments.dev.gpu_dev.alice]\nssh_cidrs = ["0.0.0.0/0"]\n'
    with pytest.raises(ConfigError, match=r"environments\.dev\.ssh_cidrs: 0\.0\.0\.0/0 opens SSH to the whole internet"):
        config.parse(base + env, Path("damso.toml"))
    allowed = env.replace("\n[environments.dev.gpu_dev", "\nallow_ssh_from_anywhere = true\n[environments.dev.gpu_dev")
    with pytest.raises(ConfigError, match=r"environments\.dev\.gpu_dev\.alice\.ssh_cidrs"):
        config.parse(base + allowed, Path("damso.toml"))
    cfg = config.parse(base + allowed + "allow_ssh_from_anywhere = true\n", Path("damso.toml"))
    assert cfg.environments["dev"].box_ssh_cidrs("alice") == ["0.0.0.0/0"]


DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize("ref", [
    "caddy:2.8.4", "livekit/livekit-server:v1.8.4", f"ghcr.io/org/app@{DIGEST}", f"caddy:2.8.4@{DIGEST}",
    "localhost:5000/team/app:sha-0123456789ab", "[::1]:5000/app:v1", "Registry.Example.com/app:v1", "a/b__c/d-e.f:T_1.0-x",
])  # fmt: skip
def test_image_references_docker_accepts(ref):
    assert values.image_reference(ref) is None


@pytest.mark.parametrize("ref, says", [
    ("caddy@sha256:0123abcd", "digest of 8 hex digits"), (f"caddy@{DIGEST[:-1]}", "digest of 63 hex digits"),
    (f"caddy@{DIGEST.upper().replace('SHA256', 'sha256')}", "not sha256: and 64 lowercase hex digits"),
    ("Caddy:2", "upper case"), ("ghcr.io/Org/app:v1", "upper case"), ("caddy:", "not an image reference"),
    ("caddy:-1", "not an image reference"), ("a//b:1", "not an image reference"), ("a b:1", "no spaces"),
    ("caddy:" + "t" * 129, "not an image reference"), ("x/" + "a" * 260 + ":1", "longer than 255"),
])  # fmt: skip
def test_image_references_docker_refuses_get_a_reason(ref, says):
    assert says in values.image_reference(ref)


def test_iam_actions_and_resources():
    for good in ("s3:GetObject", "bedrock:Invoke*", "s3:Get?bject"):
        assert values.iam_action_problem(good) is None
    for bad, says in (("s3:**", "every action of s3"), ("s3:*", "every action of s3"), ("*:*", "every service"),
                      ("*", "every service"), ("iam:PassRole", "iam: or sts:"), ("sts:AssumeRole", "iam: or sts:"),
                      ("s3", "not an IAM action"), ("e*:Run", "wildcard in its service")):  # fmt: skip
        assert says in values.iam_action_problem(bad), bad
    for good in ("*", "arn:aws:s3:::bucket/*", "arn:aws:bedrock:*::foundation-model/*", "arn:aws-cn:sqs:cn-north-1:123456789012:q"):
        assert values.iam_resource(good) is None
    for bad in ("bucket", "arn:aws:s3", "s3://bucket/*", "arn:aws:s3:::", "**"):
        assert "is not an ARN or '*'" in values.iam_resource(bad), bad


def test_names_where_a_value_may_be_typed_never_echo_it():
    token = "ghp_" + "Abc123" * 6
    for value in (token, "NAME=hunter2-value", "aB3dE6gH9jK2mN5pQ8sT1"):
        for check in (credentials.env_var_name, credentials.secret_name):
            assert value not in check(value)
    assert credentials.env_var_name("GHCR_TOKEN") is None and credentials.secret_name("API_JWT_SECRET") is None
    assert credentials.env_var_name("ghcr_token") and credentials.secret_name("api-token").startswith("'api-token'")
    assert credentials.looks_like_token("AKIA" + "A" * 16) and not credentials.looks_like_token("https://api.example.com")


def test_dns_labels():
    assert values.dns_label("livekit") is None
    for bad in ("-live", "live-", "Live", "l" * 64, "a.b", ""):
        assert values.dns_label(bad), bad
