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
