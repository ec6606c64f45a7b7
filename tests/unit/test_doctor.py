"""damso doctor: which checks each purpose runs, the Terraform version floor, AWS credentials
against in-process moto (the real engine, registry and git are in tests/integration/test_doctor.py)."""

from __future__ import annotations

import json
import os
import stat

import pytest
from typer.testing import CliRunner

from damso_ops import doctor
from damso_ops.cli import app
from damso_ops.deploy import terraform
from damso_ops.errors import DamsoError
from tests.support.moto_env import ACCOUNT

SANDBOX_TOML = """
[environments.lab]
sandbox = true
region = "eu-west-1"
"""


@pytest.fixture
def probes(monkeypatch):
    """Terraform, Docker and git answer without running anything; record who was asked."""
    asked = []

    def fake(name, detail):
        def probe(*args):
            asked.append(name)
            return detail

        monkeypatch.setattr(doctor, f"{name}_probe", probe)

    fake("terraform", "Terraform 1.11.4; providers from the public registry")
    fake("docker", "Docker engine 27.0 (API 1.46)")
    fake("git", "git version 2.43.0")
    fake("sources", "1 repositories answer: app")
    return asked


def names(checks) -> list[str]:
    return [c.name for c in checks]


@pytest.mark.parametrize(
    ("found", "ok"),
    [("1.10.0", True), ("1.11.4", True), ("1.10.0-beta1", True), ("2.0.0", True), ("1.9.8", False), ("1.7.5", False), ("0.15.5", False)],
)
def test_terraform_older_than_1_10_is_refused_in_one_sentence(found, ok):
    if ok:
        assert terraform.check_version(found) == found
        return
    with pytest.raises(DamsoError) as info:
        terraform.check_version(found)
    message = str(info.value)
    assert message == f"Terraform {found} is too old: damso needs 1.10 or newer, whose S3 backend locks state with use_lockfile."
    assert message.count(". ") == 0 and message.endswith(".")


def test_version_reads_terraform_version_json_and_refuses_an_old_one(tmp_path, monkeypatch):
    fake = tmp_path / "bin" / "terraform"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\necho \'{"terraform_version": "1.9.8", "platform": "linux_amd64"}\'\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}/usr/bin{os.pathsep}/bin")
    monkeypatch.setenv("DAMSO_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(DamsoError, match=r"^Terraform 1\.9\.8 is too old: damso needs 1\.10 or newer"):
        terraform.version()
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(DamsoError) as info:
        terraform.version()
    assert str(info.value) == "terraform is not on the PATH. Install Terraform 1.10 or newer."


def test_plain_doctor_checks_what_it_did_plus_the_terraform_floor(make_config, probes, monkeypatch):
    cfg = make_config("")
    monkeypatch.setenv("GHCR_USERNAME", "me")
    monkeypatch.setenv("GHCR_TOKEN", "t0ken")
    checks = doctor.run_checks(lambda: cfg)
    assert names(checks) == ["config", "terraform", "docker", "registry credentials"]
    assert all(c.ok for c in checks) and probes == ["terraform", "docker"]


def test_build_checks_git_sources_docker_and_registry_never_terraform_or_aws(make_config, probes, monkeypatch):
    cfg = make_config("")
    monkeypatch.setenv("GHCR_USERNAME", "me")
    monkeypatch.delenv("GHCR_TOKEN", raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", "/nonexistent")
    checks = doctor.run_checks(lambda: cfg, "build")
    assert names(checks) == ["config", "git", "source repositories", "docker", "registry credentials"]
    assert probes == ["git", "sources", "docker"]
    failed = [c for c in checks if not c.ok]
    assert names(failed) == ["registry credentials"] and "GHCR_TOKEN" in failed[0].detail


def test_deploy_checks_terraform_and_aws_credentials_in_the_envs_region(make_config, probes, aws):
    cfg = make_config("")
    checks = doctor.run_checks(lambda: cfg, "deploy", "prod")
    assert names(checks) == ["config", "terraform", "aws credentials", "ssm agents"] and probes == ["terraform"]
    assert all(c.ok for c in checks), checks
    assert checks[0].detail.endswith("; prod is in us-east-1")
    assert checks[2].detail == f"account {ACCOUNT} as arn:aws:sts::{ACCOUNT}:user/moto in us-east-1"
    assert checks[3].detail == "prod is not deployed yet: no instance to check"
    assert names(doctor.run_checks(lambda: cfg, "deploy")) == ["config", "terraform", "aws credentials"]


def test_deploy_says_which_instances_ssm_does_not_know():
    class Ssm:  # moto has no DescribeInstanceInformation
        def get_paginator(self, name):
            assert name == "describe_instance_information"
            return self

        def paginate(self, Filters):  # noqa: N803
            assert Filters == [{"Key": "InstanceIds", "Values": ["i-a", "i-b", "i-c"]}]
            return [{"InstanceInformationList": [{"InstanceId": "i-b"}]}]

    roles = {"i-a": "api", "i-b": "api", "i-c": "agent"}
    assert doctor.ssm_detail(roles, doctor.registered(Ssm(), sorted(roles))) == (
        "1 of 3 instances registered with SSM; not registered: i-a (api), i-c (agent): damso exec cannot reach them "
        "(the SSM agent must run and reach SSM)")  # fmt: skip
    assert doctor.ssm_detail({"i-b": "api"}, {"i-b"}) == "every instance (1) is registered with SSM: damso exec reaches them"


def test_deploy_without_credentials_fails_with_one_sentence(make_config, probes, aws, monkeypatch):
    cfg = make_config("")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    checks = doctor.run_checks(lambda: cfg, "deploy")
    aws_check = checks[-1]
    assert not aws_check.ok and aws_check.detail.startswith("No AWS credentials were found.")


def test_a_sandbox_needs_no_aws_credentials(make_config, probes, monkeypatch):
    cfg = make_config(SANDBOX_TOML)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    (config_check, _, aws_check, ssm_check) = doctor.run_checks(lambda: cfg, "deploy", "lab")
    assert config_check.ok and config_check.detail.endswith("; lab is a sandbox")
    assert aws_check.ok and aws_check.detail == "lab: sandbox, the embedded emulator needs no AWS credentials"
    assert ssm_check.ok and ssm_check.detail == "lab: sandbox, the emulator records damso exec's commands and runs none"


def test_an_unknown_environment_or_a_broken_config_fails_the_config_check(make_config, probes):
    cfg = make_config("")
    checks = doctor.run_checks(lambda: cfg, "deploy", "nope")
    assert [c.ok for c in checks] == [False, True, False, False]
    assert checks[0].detail.startswith("Unknown environment 'nope'") and checks[2].detail == checks[3].detail == checks[0].detail

    def broken():
        raise DamsoError("damso.toml: registry.host: field required")

    checks = doctor.run_checks(broken, "build")
    assert [c.ok for c in checks] == [False, True, False, True, False]  # git and Docker are still checked
    assert checks[2].detail == checks[4].detail == "Not checked: damso.toml did not load."


def test_cli_for_and_env_and_json(make_config, probes, aws):
    cfg = make_config("")
    result = CliRunner().invoke(app, ["--config", str(cfg.path), "doctor", "--for", "deploy", "--env", "prod", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] is True and [c["name"] for c in data["checks"]] == ["config", "terraform", "aws credentials", "ssm agents"]
    wrong = CliRunner().invoke(app, ["--config", str(cfg.path), "doctor", "--for", "test"])
    assert wrong.exit_code == 2 and "'test' is not one of 'build', 'deploy'" in wrong.output


def test_cli_exits_1_when_a_check_fails(make_config, probes, monkeypatch):
    cfg = make_config("")
    monkeypatch.delenv("GHCR_TOKEN", raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", "/nonexistent")
    result = CliRunner().invoke(app, ["--config", str(cfg.path), "doctor", "--for", "build"])
    assert result.exit_code == 1
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["ok", "ok", "ok", "ok", "FAIL"]
