"""damso doctor against the real engine, terraform and a config."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration


def test_doctor_all_ok(project):
    result = project.damso("doctor")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split()[1] for line in lines] == ["config:", "terraform:", "docker:", "registry"]
    assert all(line.startswith("ok") for line in lines)
    assert "Terraform 1." in result.stdout and "Docker engine" in result.stdout
    assert project.registry.password not in result.output


def test_doctor_reports_each_failure(project, tmp_path):
    result = project.damso("doctor", "--json", env={"GHCR_TOKEN": None, "DOCKER_CONFIG": str(tmp_path),
                                                    "DOCKER_HOST": "unix:///nonexistent.sock"})  # fmt: skip
    assert result.exit_code == 1
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["config"]["ok"] and checks["terraform"]["ok"]
    assert not checks["docker"]["ok"] and "Cannot reach the Docker engine at unix:///nonexistent.sock" in checks["docker"]["detail"]
    assert not checks["registry credentials"]["ok"] and "GHCR_TOKEN" in checks["registry credentials"]["detail"]


def test_doctor_for_build_checks_git_the_repositories_docker_and_the_registry(project):
    result = project.damso("doctor", "--for", "build", env={"PATH": "/usr/bin:/bin"})  # no terraform needed
    assert result.exit_code == 0, result.output
    assert [line.split()[1] for line in result.stdout.splitlines()] == ["config:", "git:", "source", "docker:", "registry"]
    assert "3 repositories answer: app, broken, site" in result.stdout


def test_doctor_for_build_names_a_repository_that_does_not_answer(project):
    text = project.config.read_text().replace(f"file://{project.repos['site']}", f"file://{project.repos['site']}-gone")
    project.config.write_text(text)
    result = project.damso("doctor", "--for", "build", "--json")
    assert result.exit_code == 1
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert not checks["source repositories"]["ok"] and checks["docker"]["ok"]
    assert checks["source repositories"]["detail"].startswith(f"git cannot list the refs of 'site' at file://{project.repos['site']}-gone")


def test_doctor_refuses_terraform_older_than_1_10(project, tmp_path):
    fake = tmp_path / "old-terraform" / "terraform"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\necho \'{"terraform_version": "1.9.8", "platform": "linux_amd64"}\'\n')
    fake.chmod(0o755)
    result = project.damso("doctor", "--json", env={"PATH": f"{fake.parent}:/usr/bin:/bin"})
    assert result.exit_code == 1
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["terraform"] == {
        "name": "terraform", "ok": False,
        "detail": "Terraform 1.9.8 is too old: damso needs 1.10 or newer, whose S3 backend locks state with use_lockfile.",
    }  # fmt: skip
