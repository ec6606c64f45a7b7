"""damso status / releases / rollback / logs / unlock and the deploy lock, against moto, real
terraform, and the reconcile unit run for real on the local Docker engine (--converge-local).

One project (environment "opsbox", roles api and web) is deployed once and driven through the
module's tests in order; the sandbox server is stopped and the containers removed at the end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests.integration.conftest import sandbox_lifetime, wait_until, write_config
from tests.integration.conftest import sandbox_project as make_sandbox_project
from tests.integration.test_deploy_sandbox import AMI

pytestmark = pytest.mark.integration

ENV = "opsbox"  # not "sandbox": compose projects are damso-<env>-<role> on a possibly shared engine
ROLES = ("api", "web")
SECRET = "sentinel-ops-secret-5c1e9a"
COMPOSE = """\
services:
  app:
    image: {{ images["api"] }}
    init: true
    command: ["/bin/busybox", "sh", "-c", "echo \\"boot $$APP_MESSAGE token=$$APP_SECRET\\"; mkdir -p /www && echo \\"$$APP_MESSAGE\\" > /www/index.html && exec /bin/busybox httpd -f -p 8080 -h /www"]
    env_file: [{{ env_file }}, {{ secrets_file }}]
    healthcheck:
      test: ["CMD", "/bin/busybox", "sh", "-c", "/bin/busybox wget -qO- http://127.0.0.1:8080/ >/dev/null"]
      interval: 2s
      timeout: 2s
      retries: 3
"""


def ops_toml(message: str = "one", web_type: str = "t3.small") -> str:
    roles = []
    for role in ROLES:
        env = {"APP_MESSAGE": f"{message} from {role}"}
        env_toml = ", ".join(f'{k} = "{v}"' for k, v in env.items())
        roles.append(
            f"""
[environments.{ENV}.roles.{role}]
instance_type = "{web_type if role == 'web' else 't3.small'}"
ami = "{AMI}"
services = ["api"]
compose_template = "compose/app.yml.j2"
health_timeout = 60
secrets = ["REGISTRY_USERNAME", "REGISTRY_PASSWORD", "APP_SECRET"]
env = {{ {env_toml} }}
"""
        )
    return (
        f'\n[environments.{ENV}]\nsandbox = true\nregion = "ap-northeast-2"\ndomain = "ops.test"\n'
        f'[environments.{ENV}.build_args]\nPUBLIC_URL = "https://ops.test"\n'
        + "".join(roles)
    )


@pytest.fixture(scope="module")
def ops_project(tmp_path_factory, registry, dockerd, busybox_image, git_root):
    project = make_sandbox_project(tmp_path_factory.mktemp("operate"), registry, dockerd, git_root,
                                   {"compose/app.yml.j2": COMPOSE}, ops_toml(), {"APP_SECRET": SECRET})  # fmt: skip
    project.compose_prefix = f"damso-{ENV}-"
    with sandbox_lifetime(project, dockerd.host):
        yield project


def configure(project, **kw) -> None:
    write_config(project.root, project.registry.host, project.repos, ops_toml(**kw))


def deploy(project, *args: str):
    return project.run_json("deploy", ENV, "--yes", "--converge-local", *args)


def build_commit(project) -> str:
    return json.loads((project.root / ".damso" / "builds" / "latest.json").read_text())["images"]["api"]["commit"]


@pytest.fixture(scope="module")
def first_deploy(ops_project):
    result, data = deploy(ops_project)
    assert result.exit_code == 0, result.output
    assert data["healthy"]
    return data


def test_status_after_deploy_is_healthy_and_shows_commits(ops_project, first_deploy):
    result, data = ops_project.run_json("status", ENV)
    assert result.exit_code == 0, result.output
    assert data["ok"] is True and data["problems"] == [] and data["current"] == first_deploy["release"]
    assert sorted(i["role"] for i in data["instances"]) == list(ROLES)
    commit = build_commit(ops_project)
    for i in data["instances"]:
        assert i["state"] == "running" and i["health"] == "healthy"
        assert i["release_running"] == i["release_current"] == first_deploy["release"]
        assert i["private_ip"].startswith("10.0.") and i["report_age_seconds"] < 300
        (c,) = i["containers"]
        assert c["name"] == "app" and c["service"] == "api" and c["commit"] == commit and c["in_release"]
        assert c["digest"].startswith("sha256:") and c["ok"]
    plain = ops_project.run("status", ENV)
    assert plain.exit_code == 0 and f"commit {commit[:12]}" in plain.stdout and f"{ENV}: ok" in plain.stdout


def test_logs_show_every_container_with_secrets_masked(ops_project, first_deploy):
    # Its compose file has no logging block: the log group is there, but nothing reaches it.
    result = ops_project.run("logs", ENV, "web", "app", "--lines", "5")
    assert result.exit_code == 0, result.output
    assert "no container of web has sent a line to" in result.stderr and "hosts put in their last reports" in result.stderr
    assert "boot one from web token=********" in result.stdout
    s3 = ops_project.aws.client("s3")
    bucket = ops_project.bucket(f"{ENV}-artifacts")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{ENV}/reports/"):
        for obj in page["Contents"]:
            assert SECRET not in s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode()
    unknown = ops_project.run("logs", ENV, "web", "nope")
    assert unknown.exit_code == 2 and "has no container 'nope' (containers: app)" in unknown.output


def test_status_marks_a_rejected_release_and_stale_reports(ops_project, first_deploy):
    from damso_ops import config
    from damso_ops.deploy.converge import reconcile_command
    from damso_ops.deploy.store import ReleaseStore
    from damso_ops.deploy.target import Target

    aws = ops_project.aws
    s3 = aws.client("s3")
    bucket = ops_project.bucket(f"{ENV}-artifacts")
    current = first_deploy["release"]
    store = ReleaseStore(s3, bucket, ENV)
    manifest = store.manifest(current)
    for role, files in manifest["roles"].items():  # a release whose web compose.yml does not match its sum
        for name in files:
            body = s3.get_object(Bucket=bucket, Key=f"{ENV}/releases/{current}/{role}/{name}")["Body"].read()
            if role == "web" and name == "compose.yml":
                body += b"\n# tampered\n"
            s3.put_object(Bucket=bucket, Key=f"{ENV}/releases/tampered-1/{role}/{name}", Body=body)
    s3.put_object(Bucket=bucket, Key=f"{ENV}/releases/tampered-1/manifest.json", Body=json.dumps({**manifest, "release": "tampered-1"}).encode())
    target = Target(config.load(ops_project.config), ENV, aws)
    web = next(i["instance"] for i in first_deploy["instances"].values() if i["role"] == "web")
    cmd = reconcile_command(target, "web", web, bucket)
    store.set_role_release("web", "tampered-1")
    try:
        proc = subprocess.run(cmd.argv, cwd=cmd.cwd, env={**os.environ, **cmd.env, "DOCKER_HOST": ops_project.env["DOCKER_HOST"]},
                              capture_output=True, text=True)  # fmt: skip
        assert proc.returncode == 1, proc.stderr
        result, data = ops_project.run_json("status", ENV)
        assert result.exit_code == 1
        (web_status,) = [i for i in data["instances"] if i["role"] == "web"]
        assert web_status["health"] == "rejected" and web_status["release_running"] == current
        assert any("behind current tampered-1" in p for p in web_status["problems"])
        assert any("checksum mismatch for web/compose.yml" in p for p in data["problems"])
        plain = ops_project.run("status", ENV)
        assert plain.exit_code == 1 and "(BEHIND)" in plain.stdout and "problem(s)" in plain.stdout
    finally:
        store.set_role_release("web", current)
        for key in [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"{ENV}/releases/tampered-1/")["Contents"]]:
            s3.delete_object(Bucket=bucket, Key=key)
    subprocess.run(cmd.argv, cwd=cmd.cwd, env={**os.environ, **cmd.env, "DOCKER_HOST": ops_project.env["DOCKER_HOST"]}, check=True,
                   capture_output=True)  # fmt: skip
    time.sleep(2)
    stale = ops_project.run("status", ENV, "--stale-after", "1")
    assert stale.exit_code == 1 and "last report is" in stale.stdout
    assert ops_project.run("status", ENV).exit_code == 0


@pytest.fixture(scope="module")
def three_releases(ops_project, first_deploy):
    ids = [first_deploy["release"]]
    for message in ("two", "three"):
        configure(ops_project, message=message)
        result, data = deploy(ops_project)
        assert result.exit_code == 0, result.output
        assert data["changed"] and not any(s["applied"] for s in data["stacks"].values())
        ids.append(data["release"])
    return ids


def test_release_history_across_three_deploys(ops_project, three_releases):
    result, data = ops_project.run_json("releases", ENV)
    assert result.exit_code == 0, result.output
    entries = data["releases"]
    assert [e["release"] for e in entries[:3]] == list(reversed(three_releases))
    newest, middle, oldest = entries[:3]
    assert newest["current"] and not middle["current"] and newest["previous"] == middle["release"]
    assert newest["changes"]["files"]["changed"] == ["api/role.env", "web/role.env"]
    assert newest["changes"]["images"] == []
    assert "@" in newest["by"] and newest["images"]["api"]["commit"] == build_commit(ops_project)
    assert oldest["changes"] is None  # nothing older to compare with
    _, data = ops_project.run_json("releases", ENV, "--limit", "2")
    assert [e["release"] for e in data["releases"]] == list(reversed(three_releases))[:2]
    assert data["releases"][-1]["changes"] is not None  # compared with the one not shown
    plain = ops_project.run("releases", ENV)
    assert "<- current" in plain.stdout and "files changed: api/role.env, web/role.env" in plain.stdout


def test_rollback_waits_for_the_lock_then_runs_the_named_release(ops_project, three_releases):
    from damso_ops.deploy import lock
    first, _, third = three_releases
    s3 = ops_project.aws.client("s3")
    refused = ops_project.run("rollback", ENV, "--to", first)
    assert refused.exit_code == 2 and "pass --yes" in refused.output
    malformed = ops_project.run("rollback", ENV, "--to", "nope", "--yes")  # refused before AWS
    assert malformed.exit_code == 2 and "--to 'nope' is not a release id" in malformed.output
    unknown = ops_project.run("rollback", ENV, "--to", "20200101T000000Z-0123456789", "--yes")
    assert unknown.exit_code == 2 and "has no release '20200101T000000Z-0123456789'" in unknown.output
    other = lock.acquire(s3, ops_project.bucket(f"{ENV}-tfstate"), ENV, "deploy")  # someone else deploying
    proc = ops_project.spawn("rollback", ENV, "--to", first, "--yes", "--converge-local", "--lock-timeout", "60", "--json")
    lines = []
    for line in proc.stdout:  # released once the rollback says it waits, however slow the machine
        lines.append(line)
        if line.startswith(f"lock: waiting for deploy by {other.info['holder']} (pid {other.info['pid']})"):
            assert lock.release(s3, other)
    assert proc.wait(timeout=60) == 0, "".join(lines)
    assert any(line.startswith("lock: waiting for deploy by") for line in lines), "".join(lines)
    data = json.loads("".join(lines[lines.index("{\n"):]))
    assert data["release"] == first and data["previous"] == third and data["changed"] and data["healthy"]
    result, status = ops_project.run_json("status", ENV)
    assert result.exit_code == 0, result.output
    assert status["current"] == first and {i["release_running"] for i in status["instances"]} == {first}
    assert _lock(s3, ops_project.bucket(f"{ENV}-tfstate")) is None


def _lock(s3, bucket):
    from damso_ops.deploy import lock
    return lock.read(s3, bucket, ENV)


def _apply_lock(s3, bucket, stack: str):
    try:
        data = json.loads(s3.get_object(Bucket=bucket, Key=f"{ENV}/{stack}.tfstate.tflock")["Body"].read())
    except s3.exceptions.NoSuchKey:
        return None
    return data if data.get("Operation") == "OperationTypeApply" else None


def test_concurrent_deploy_is_refused_and_a_killed_one_recovers_after_unlock(ops_project, three_releases):
    """A deploy killed (SIGKILL, with its terraform) while applying; a second one meanwhile is refused.
    Runs after the rollback: the recovering deploy must also re-point from the rolled-back release."""
    s3 = ops_project.aws.client("s3")
    bucket = ops_project.bucket(f"{ENV}-tfstate")
    configure(ops_project, message="four", web_type="t3.medium")  # an in-place instance change: stop, modify, start
    proc = ops_project.spawn("deploy", ENV, "--yes", "--converge-local")
    try:
        wait_until(lambda: _apply_lock(s3, bucket, "web"), 180, "terraform apply of the web stack", proc)
        concurrent, _ = deploy(ops_project)
        holder = _lock(s3, bucket)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # damso, terraform and its provider: the session started above
        proc.wait()
    assert concurrent.exit_code == 3, concurrent.output
    assert f"{ENV} is locked: deploy by {holder['holder']} (pid {proc.pid})" in concurrent.output
    assert _lock(s3, bucket)["pid"] == proc.pid
    assert _apply_lock(s3, bucket, "web") is not None  # terraform's own lock is left behind too

    refused, _ = deploy(ops_project)
    assert refused.exit_code == 3 and f"(pid {proc.pid})" in refused.output and f"damso unlock {ENV}" in refused.output
    no_tty = ops_project.run("unlock", ENV)
    assert no_tty.exit_code == 2 and "pass --yes" in no_tty.output and _lock(s3, bucket) is not None
    unlocked = ops_project.run("unlock", ENV, "--yes")
    assert unlocked.exit_code == 0 and f"pid {proc.pid}" in unlocked.stdout, unlocked.output
    assert ops_project.run("unlock", ENV, "--yes").stdout.strip() == f"{ENV} is not locked."

    result, data = deploy(ops_project)
    assert result.exit_code == 0, result.output
    assert f"removed Terraform lock files left by an interrupted run: {ENV}/web.tfstate.tflock" in result.output
    assert data["changed"] and data["release"] not in three_releases and data["healthy"]
    result, status = ops_project.run_json("status", ENV)
    assert result.exit_code == 0, result.output
    assert status["current"] == data["release"]
    (web,) = [i for i in status["instances"] if i["role"] == "web"]
    assert web["instance_type"] == "t3.medium" and web["state"] == "running"
    assert _lock(s3, bucket) is None and _apply_lock(s3, bucket, "web") is None


def test_nothing_secret_in_operate_output(ops_project, three_releases):
    for i, output in enumerate(ops_project.outputs):
        assert SECRET not in output and ops_project.registry.password not in output, f"a secret leaked into output #{i}"
