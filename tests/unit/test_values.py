"""The shapes AWS, Terraform, Docker and git accept (damso_ops/values.py): good values pass,
bad ones get a reason that names them."""

from __future__ import annotations

import pytest

from damso_ops import values

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
