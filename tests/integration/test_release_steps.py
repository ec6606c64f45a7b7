"""Release tasks and secret files in the sandbox, one deployment for the file: a role with two
instances, a task (roles.api.tasks) and a secret file (roles.api.secret_files). Hosts converge for
real (the reconcile unit on this machine's engine, --converge-local); task runs are counted from
the engine's own events, never from what damso says about them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from datetime import datetime

import pytest

from tests.integration.conftest import sandbox_lifetime, write_config
from tests.integration.conftest import sandbox_project as make_sandbox_project
from tests.integration.test_deploy_sandbox import AMI
from tests.integration.test_deploy_sandbox import COMPOSE as SANDBOX_COMPOSE

pytestmark = pytest.mark.integration

ENV = "steps"
TASK = "migrate"
KEY_LINE = "sentinel-p8-key-2c9e41d7b0a3f5e8"  # the secret file's distinctive line
P8 = f"-----BEGIN PRIVATE KEY-----\n{KEY_LINE}\n-----END PRIVATE KEY-----\n"
MOUNT = "/secrets/apns-key.p8"
# The sandbox test's app (its health check reads HEALTHY), and a service that does not mount the secret file.
COMPOSE = SANDBOX_COMPOSE + """\
  sidecar:
    image: {{ images["api"] }}
    init: true
    command: ["/bin/busybox", "sleep", "3600"]
"""
# The task reads the role's env (TASK_FAIL) like a migration reads DATABASE_URL.
TASK_COMMAND = ["/bin/busybox", "sh", "-c",
                'echo "migrating for $APP_MESSAGE"; if [ "$TASK_FAIL" = 1 ]; then echo "boom: schema mismatch"; exit 3; fi']


def steps_toml(message: str = "one", fail: bool = False) -> str:
    return f"""
[environments.{ENV}]
sandbox = true
region = "ap-northeast-2"
[environments.{ENV}.build_args]
PUBLIC_URL = "https://steps.test"

[environments.{ENV}.roles.api]
ami = "{AMI}"
count = 2
services = ["api"]
compose_template = "compose/app.yml.j2"
health_timeout = 20
secrets = ["REGISTRY_USERNAME", "REGISTRY_PASSWORD"]
env = {{ APP_MESSAGE = "{message}", HEALTHY = "1", TASK_FAIL = "{1 if fail else 0}" }}

[[environments.{ENV}.roles.api.tasks]]
name = "{TASK}"
service = "api"
command = {json.dumps(TASK_COMMAND)}
timeout = 60

[environments.{ENV}.roles.api.secret_files.APNS_KEY_P8]
path = "{MOUNT}"
services = ["app"]
"""


def deploy(project):
    return project.run_json("deploy", ENV, "--yes", "--converge-local")


def task_starts(docker_client, since: float) -> list[dict]:
    """The engine's start events of this project's task containers since `since` (epoch seconds)."""
    events = docker_client.events(since=int(since), until=int(time.time()) + 1, decode=True,
                                  filters={"type": "container", "event": "start", "label": f"damso.task={TASK}"})  # fmt: skip
    return [e for e in events if e["Actor"]["Attributes"].get("name", "").startswith(f"damso-{ENV}-api")]


def app_containers(docker_client) -> dict[str, object]:
    """compose project → its running app container."""
    found = {}
    for c in docker_client.containers.list(filters={"label": "com.docker.compose.service=app"}):
        project = c.labels["com.docker.compose.project"]
        if project.startswith(f"damso-{ENV}-api"):
            found[project] = c
    return found


def host_dir(project, instance: str):
    return project.root / ".damso" / "sandbox" / "hosts" / instance


@pytest.fixture(scope="module")
def steps(tmp_path_factory, registry, dockerd, busybox_image, git_root, docker_client):
    base = tmp_path_factory.mktemp("steps")
    project = make_sandbox_project(base, registry, dockerd, git_root, {"compose/app.yml.j2": COMPOSE}, steps_toml(), {})
    project.compose_prefix = f"damso-{ENV}-"
    key = base / "AuthKey.p8"
    key.write_text(P8)
    with sandbox_lifetime(project, dockerd.host):
        stored = project.run("secrets", "set", ENV, "api", "APNS_KEY_P8", "--file", str(key))
        assert stored.exit_code == 0, stored.output
        key.unlink()  # the sentinel is now only in SSM
        project.since = time.time() - 1
        started = time.monotonic()
        result, data = deploy(project)
        assert result.exit_code == 0, result.output
        project.first = data
        project.first_seconds = time.monotonic() - started
        yield project


def test_release_task_runs_once_on_one_host_before_the_services_start(steps, docker_client):
    data = steps.first
    assert data["healthy"] and len(data["instances"]) == 2
    starts = task_starts(docker_client, steps.since)
    assert len(starts) == 1, starts  # two hosts, one run
    s3 = steps.aws.client("s3")
    record = json.loads(s3.get_object(Bucket=steps.bucket("artifacts"), Key=f"{ENV}/tasks/{data['release']}/api.json")["Body"].read())
    assert record["state"] == "done" and record["instance"] in data["instances"]
    assert [t["name"] for t in record["tasks"]] == [TASK] and record["tasks"][0]["exit_code"] == 0
    finished = datetime.fromisoformat(record["finished"])
    apps = app_containers(docker_client)
    assert len(apps) == 2
    for app in apps.values():  # each instance's service started after the task had finished
        assert datetime.fromisoformat(app.attrs["State"]["StartedAt"][:19] + "+00:00") >= finished
    assert not docker_client.containers.list(all=True, filters={"label": f"damso.task={TASK}"})  # removed after its run
    print(f"\nfirst deploy (two instances, a task, a secret file; terraform applies included): {steps.first_seconds:.1f} s")


def test_the_same_release_never_runs_its_tasks_again(steps, docker_client):
    since = time.time() - 1
    result, data = deploy(steps)  # a second deploy of the same release
    assert result.exit_code == 0, result.output
    assert data["release"] == steps.first["release"] and data["changed"] is False
    # A host that lost its state (a replaced disk) fetches and applies the release again: the tasks stay done.
    from damso_ops import config
    from damso_ops.deploy.converge import reconcile_command
    from damso_ops.deploy.target import Target

    project, app = sorted(app_containers(docker_client).items())[-1]
    where = app.labels.get("com.docker.compose.project.working_dir") or app.labels["com.docker.compose.project.config_files"]
    (instance,) = [i for i in steps.first["instances"] if f"/hosts/{i}/" in where]
    workdir = host_dir(steps, instance)
    (workdir / "applied").unlink()
    shutil.rmtree(workdir / "releases")
    target = Target(config.load(steps.config), ENV, steps.aws)
    cmd = reconcile_command(target, "api", instance, steps.bucket("artifacts"), index=int(project.rsplit("-", 1)[1]))
    proc = subprocess.run(cmd.argv, cwd=cmd.cwd, env={**os.environ, **cmd.env, "DOCKER_HOST": steps.env["DOCKER_HOST"]},
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(steps.aws.client("s3").get_object(Bucket=steps.bucket("artifacts"), Key=f"{ENV}/reports/{instance}.json")["Body"].read())
    assert report["status"] == "healthy" and report["running"] == steps.first["release"]
    assert task_starts(docker_client, since) == []


def test_secret_file_is_on_the_host_0600_and_mounted_read_only_into_named_containers(steps, docker_client):
    release = steps.first["release"]
    for instance in steps.first["instances"]:
        path = host_dir(steps, instance) / "releases" / release / "secret-files" / "APNS_KEY_P8"
        assert path.read_text() == P8
        assert oct(path.stat().st_mode & 0o777) == "0o600"
    ssm = steps.aws.client("ssm")
    assert ssm.get_parameter(Name="/damso/steps/api/files/APNS_KEY_P8", WithDecryption=True)["Parameter"]["Value"] == P8
    for app in app_containers(docker_client).values():
        assert app.exec_run(["/bin/busybox", "cat", MOUNT]).output.decode() == P8
        write = app.exec_run(["/bin/busybox", "sh", "-c", f"echo x >> {MOUNT}"])
        assert write.exit_code != 0  # read-only
        (sidecar,) = docker_client.containers.list(filters={"label": [f"com.docker.compose.project={app.labels['com.docker.compose.project']}",
                                                                      "com.docker.compose.service=sidecar"]})  # fmt: skip
        assert sidecar.exec_run(["/bin/busybox", "test", "-e", MOUNT]).exit_code != 0  # only the named service mounts it
        for c in (app, sidecar):
            assert not any(KEY_LINE in line for line in c.attrs["Config"]["Env"])


def test_secret_file_sentinel_is_nowhere_else(steps, docker_client):
    """Not in S3 (releases, reports, task records, Terraform state with the user-data), not in the
    project's files (secrets.env included), not in logs or console output."""
    s3 = steps.aws.client("s3")
    for bucket in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            for v in page.get("Versions", []):
                body = s3.get_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])["Body"].read()
                assert KEY_LINE.encode() not in body, f"s3://{bucket}/{v['Key']}"
    ec2 = steps.aws.client("ec2")
    for instance in steps.first["instances"]:
        user_data = ec2.describe_instance_attribute(InstanceId=instance, Attribute="userData")["UserData"].get("Value", "")
        assert user_data and KEY_LINE not in user_data
    holders = []
    for folder, _, names in os.walk(steps.root):
        for name in names:
            path = os.path.join(folder, name)
            if os.path.isfile(path) and not os.path.islink(path) and KEY_LINE.encode() in open(path, "rb").read():
                holders.append(os.path.relpath(path, steps.root))
    release = steps.first["release"]
    allowed = {os.path.join(".damso", "sandbox", "hosts", i, "releases", release, "secret-files", "APNS_KEY_P8")
               for i in steps.first["instances"]}  # fmt: skip
    assert holders and set(holders) <= allowed, holders
    for c in docker_client.containers.list(all=True, filters={"label": "com.docker.compose.project"}):
        if c.labels["com.docker.compose.project"].startswith(f"damso-{ENV}-"):
            assert KEY_LINE not in c.logs().decode(errors="replace")
    assert steps.outputs and not any(KEY_LINE in out for out in steps.outputs)


def test_failing_task_halts_the_wave_and_the_old_release_keeps_running(steps, docker_client):
    before = {p: (c.id, c.attrs["State"]["StartedAt"]) for p, c in app_containers(docker_client).items()}
    since = time.time() - 1
    write_config(steps.root, steps.registry.host, steps.repos, steps_toml("two", fail=True))
    result, data = deploy(steps)
    assert result.exit_code == 4, result.output
    assert "release task migrate exited with code 3" in result.output and "boom: schema mismatch" in result.output
    assert len(task_starts(docker_client, since)) == 1  # the first instance ran it; the second never moved
    after = app_containers(docker_client)
    assert {p: (c.id, c.attrs["State"]["StartedAt"]) for p, c in after.items()} == before  # never stopped or replaced
    for app in after.values():
        assert app.exec_run(["/bin/busybox", "wget", "-qO-", "http://127.0.0.1:8080/"]).output.decode().strip() == "one"
    s3, bucket = steps.aws.client("s3"), steps.bucket("artifacts")
    failed = data["rollout"]["release"] if data and data.get("rollout") else json.loads(
        s3.get_object(Bucket=bucket, Key=f"{ENV}/rollout.json")["Body"].read())["release"]
    record = json.loads(s3.get_object(Bucket=bucket, Key=f"{ENV}/tasks/{failed}/api.json")["Body"].read())
    assert record["state"] == "failed" and record["failed"]["inspect_state"]["ExitCode"] == 3
    assert json.loads(s3.get_object(Bucket=bucket, Key=f"{ENV}/roles/api/current")["Body"].read())["release"] == steps.first["release"]
    # Back to the running release's config: nothing to move, and its tasks, done, do not run again.
    since = time.time() - 1
    write_config(steps.root, steps.registry.host, steps.repos, steps_toml())
    result, data = deploy(steps)
    assert result.exit_code == 0, result.output
    assert data["release"] == steps.first["release"] and data["healthy"]
    assert task_starts(docker_client, since) == []
