"""Faults under damso, injected by a proxy on 127.0.0.1 (tests/support/faultproxy.py) in front of
the sandbox's AWS emulator (reached through DAMSO_SANDBOX_ENDPOINT, server.json untouched) and in
front of the registry with htpasswd auth. Real parts otherwise: moto server, Terraform, Docker.
docs/deploy.md ("Faults") lists each fault and what damso does about it."""

from __future__ import annotations

import json

import pytest

from damso_ops import sandbox
from damso_ops.images import builder
from damso_ops.deploy import lock
from tests.integration.conftest import sandbox_lifetime, write_config
from tests.integration.conftest import sandbox_project as make_sandbox_project
from tests.integration.test_deploy_sandbox import AMI, COMPOSE
from tests.support.faultproxy import FaultProxy

pytestmark = pytest.mark.integration

ENV = "faultsbox"  # compose projects are damso-<env>-<role> on a possibly shared engine
TOML = f"""
[environments.{ENV}]
sandbox = true
region = "ap-northeast-2"
domain = "faults.test"
[environments.{ENV}.build_args]
PUBLIC_URL = "https://faults.test"
[environments.{ENV}.roles.api]
instance_type = "t3.small"
ami = "{AMI}"
services = ["api"]
compose_template = "compose/app.yml.j2"
health_timeout = 60
secrets = ["REGISTRY_USERNAME", "REGISTRY_PASSWORD"]
env = {{ APP_MESSAGE = "faults" }}
"""


@pytest.fixture(scope="module")
def faults(tmp_path_factory, registry, dockerd, busybox_image, git_root):
    """A sandbox project whose AWS calls all go through a fault proxy (`faults.proxy`)."""
    project = make_sandbox_project(tmp_path_factory.mktemp("faults"), registry, dockerd, git_root,
                                   {"compose/app.yml.j2": COMPOSE}, TOML, {})  # fmt: skip
    project.compose_prefix = f"damso-{ENV}-"
    with sandbox_lifetime(project, dockerd.host):
        server = sandbox.ensure(project.root / ".damso")
        with FaultProxy(server.port) as proxy:
            project.env[sandbox.ENDPOINT_ENV] = proxy.url
            project.proxy = proxy
            yield project


def deploy(project):
    return project.run_json("deploy", ENV, "--yes", "--converge-local")


def lock_left(project) -> dict | None:
    """The environment's lock, read from the emulator itself (past the proxy)."""
    s3 = project.aws.client("s3")
    buckets = [b["Name"] for b in s3.list_buckets()["Buckets"] if f"-{ENV}-tfstate-" in b["Name"]]
    return lock.read(s3, buckets[0], ENV) if buckets else None


def test_a_lost_answer_to_the_lock_put_is_our_own_lock(faults):
    """The lock's conditional put is done, its answer lost: botocore retries, gets 412, and damso
    finds its own token there. The deploy goes on, and releases the lock at the end."""
    lost = faults.proxy.add("lose", "PUT", rf"/{ENV}/damso\.lock$")
    try:
        result, data = deploy(faults)
    finally:
        faults.proxy.clear()
    assert lost.fired == 1
    assert result.exit_code == 0, result.output
    assert data["healthy"] and "is locked" not in result.output
    puts = [path for method, path in faults.proxy.seen if method == "PUT" and path.endswith(f"/{ENV}/damso.lock")]
    assert len(puts) == 2  # the lost one and botocore's retry (412)
    assert lock_left(faults) is None


def test_a_persistent_reset_is_named_as_the_network(faults):
    faults.proxy.add("reset", "*", ".*", times=None)
    try:
        result = faults.run("deploy", ENV, "--yes", "--converge-local")
    finally:
        faults.proxy.clear()
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and errors[0].startswith("Error: Could not reach "), result.output
    assert f" at {faults.proxy.url}: connection closed (after 4 retries). Check the network" in errors[0]
    assert "Traceback" not in result.output
    assert "configured" not in result.output  # not called a configuration problem
    assert lock_left(faults) is None


def registry_digest(docker_client, registry, ref: str) -> str | None:
    auth = {"username": registry.username, "password": registry.password}
    try:
        return docker_client.api.inspect_distribution(ref, auth_config=auth)["Descriptor"]["digest"]
    except Exception:  # noqa: BLE001 - not there
        return None


def test_a_ref_tag_whose_manifest_put_failed_is_pushed_by_the_next_build(project, registry, docker_client):
    """The key tag (sha-…) reaches the registry, the ref tag's manifest put (v1) fails on every
    attempt: the build fails for that service. The next build pushes v1 instead of skipping it,
    and latest.json records only what the registry answers for."""
    with FaultProxy(registry.port) as proxy:
        write_config(project.root, proxy.host, project.repos)  # the registry, through the proxy
        failing = proxy.add("reset", "PUT", r"/v2/team/api/manifests/v1$", times=builder.REGISTRY_ATTEMPTS)
        first, data = project.damso_json("build", "--ref", "v1", "api")
        assert failing.fired == builder.REGISTRY_ATTEMPTS
        assert first.exit_code == 1
        assert data["images"]["api"]["status"] == "failed"
        assert data["failures"]["api"]["error"].startswith(f"Could not reach the registry at {proxy.host}: ")
        assert data["failures"]["api"]["error"].endswith(f"(after {builder.REGISTRY_ATTEMPTS - 1} retries).")
        key = data["images"]["api"]["tags"][0]
        assert data["images"]["api"]["tags"] == [key]  # the ref tag is not recorded
        image = f"{registry.host}/team/api"
        assert registry_digest(docker_client, registry, f"{image}:{key}")
        latest = project.root / ".damso" / "builds" / "latest.json"
        assert not latest.exists() or "api" not in json.loads(latest.read_text())["images"]

        again, data2 = project.damso_json("build", "--ref", "v1", "api")
        assert again.exit_code == 0, again.output
        record = data2["images"]["api"]
        assert record["status"] == "skipped" and record["tags"] == [key, "v1"]
        assert "pushed v1" in again.stderr
    recorded = json.loads(latest.read_text())["images"]["api"]
    assert recorded["tags"] == [key, "v1"]
    assert registry_digest(docker_client, registry, f"{image}:v1") == recorded["digest"]
    assert registry_digest(docker_client, registry, f"{image}:{key}") == recorded["digest"]
