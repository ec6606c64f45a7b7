"""Bad input to deploy: one clear sentence, a non-zero exit, nothing applied."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from damso_ops.cli import app
from damso_ops.images.manifest import BuildManifest, ImageRecord, save

pytestmark = pytest.mark.integration

CONFIG = """
[project]
name = "err"
[registry]
host = "127.0.0.1:1"
namespace = "t"
[repositories.app]
url = "file:///nonexistent.git"
[services.api]
repo = "app"
image = "api"
[environments.sandbox]
sandbox = true
[environments.sandbox.roles.api]
ami = "ami-1e749f67"
services = ["api"]
secrets = ["NEEDED_SECRET"]
env = {{ URL = "{url}" }}
"""


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "p"
    root.mkdir()
    (root / "damso.toml").write_text(CONFIG.format(url="http://${api.private_ip}:8080"))
    runner = CliRunner()
    env = {"DAMSO_CONFIG": None, "DAMSO_STATE_DIR": None, "CI": "true", "NEEDED_SECRET": None}

    def damso(*args, extra=None):
        return runner.invoke(app, ["--config", str(root / "damso.toml"), *args], env={**env, **(extra or {})})

    yield root, damso
    damso("sandbox", "stop")


def with_manifest(root: Path) -> None:
    record = ImageRecord("api", "app", "u", "v1", "a" * 40, "127.0.0.1:1/t/api", ["sha-aaaaaaaaaaaa"],
                         "sha256:" + "b" * 64, {}, "built", "t")  # fmt: skip
    save(root / ".damso", BuildManifest("b1", "t", None, {"api": record}))


def assert_nothing_started(root: Path) -> None:
    assert not (root / ".damso" / "sandbox" / "server.json").exists()
    assert not (root / ".damso" / "terraform").exists()


def test_unknown_environment(project):
    root, damso = project
    result = damso("deploy", "prod", "--yes")
    assert result.exit_code == 2
    assert "Unknown environment 'prod' (known: sandbox)." in result.output
    assert "Traceback" not in result.output
    assert_nothing_started(root)


def test_unknown_role(project):
    root, damso = project
    with_manifest(root)
    result = damso("deploy", "sandbox", "--yes", "--only", "gpu")
    assert result.exit_code == 2
    assert "Unknown role 'gpu' in sandbox (roles: api)." in result.output
    assert_nothing_started(root)


def test_no_build_manifest(project):
    root, damso = project
    result = damso("deploy", "sandbox", "--yes")
    assert result.exit_code == 1
    assert "No build manifest at" in result.output and "Run 'damso build' first." in result.output
    assert_nothing_started(root)


@pytest.mark.parametrize(
    "url, expected",
    [
        ("${api.nope}", "refers to output 'nope' of stack 'api', which has no such output"),
        ("${data.endpoint}", "refers to stack 'data', which sandbox does not apply"),
    ],
)
def test_reference_to_a_missing_stack_output(project, url, expected):
    root, damso = project
    (root / "damso.toml").write_text(CONFIG.format(url=url))
    with_manifest(root)
    result = damso("deploy", "sandbox", "--yes")
    assert result.exit_code == 2
    assert "environments.sandbox.roles.api.env.URL" in result.output and expected in result.output
    assert_nothing_started(root)


def test_terraform_missing(project, tmp_path):
    root, damso = project
    with_manifest(root)
    bare_path = tmp_path / "bin"
    bare_path.mkdir()
    result = damso("deploy", "sandbox", "--yes", extra={"PATH": str(bare_path)})
    assert result.exit_code == 1
    assert "terraform is not on the PATH." in result.output
    assert_nothing_started(root)


def test_missing_secret_applies_nothing(project):
    root, damso = project
    with_manifest(root)
    result = damso("deploy", "sandbox", "--yes", "--json")
    assert result.exit_code == 1
    error = json.loads(result.stdout)
    assert error["error"] == "Secret not set for sandbox: api/NEEDED_SECRET."
    assert "damso secrets set sandbox api NEEDED_SECRET" in error["hint"]
    # The emulator is up, but nothing was created in it.
    from damso_ops.aws import AwsEndpoint

    port = json.loads((root / ".damso" / "sandbox" / "server.json").read_text())["port"]
    s3 = AwsEndpoint("ap-northeast-2", f"http://127.0.0.1:{port}").client("s3")
    assert s3.list_buckets()["Buckets"] == []
    assert not (root / ".damso" / "terraform").exists()


def test_non_interactive_deploy_without_yes_applies_nothing(project):
    root, damso = project
    with_manifest(root)
    result = damso("deploy", "sandbox", extra={"NEEDED_SECRET": "value-1234"})
    assert result.exit_code == 1
    assert "Nothing applied: shared would change" in result.output and "Pass --yes" in result.output
    port = json.loads((root / ".damso" / "sandbox" / "server.json").read_text())["port"]
    from damso_ops.aws import AwsEndpoint

    aws = AwsEndpoint("ap-northeast-2", f"http://127.0.0.1:{port}")
    assert all(v["IsDefault"] for v in aws.client("ec2").describe_vpcs()["Vpcs"])  # only moto's default VPC


def test_secrets_list_shows_names_never_values(project):
    root, damso = project
    result = damso("secrets", "set", "sandbox", "api", "API_JWT_SECRET", "--from-env", "MY_VALUE", extra={"MY_VALUE": "sentinel-jwt-77aa"})
    assert result.exit_code == 0, result.output
    listed = damso("secrets", "list", "sandbox", "--json")
    assert json.loads(listed.stdout) == [{"role": "api", "name": "API_JWT_SECRET"}]
    assert "sentinel-jwt-77aa" not in result.output + listed.output
    bad = damso("secrets", "set", "sandbox", "nope", "X", "--from-env", "MY_VALUE", extra={"MY_VALUE": "v"})
    assert bad.exit_code == 2 and "Unknown role 'nope' in sandbox" in bad.output
    removed = damso("secrets", "rm", "sandbox", "api", "API_JWT_SECRET")
    assert removed.exit_code == 0
    assert json.loads(damso("secrets", "list", "sandbox", "--json").stdout) == []
