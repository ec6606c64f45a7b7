"""damso deploy against the embedded emulator: real terraform apply, real S3/SSM (moto),
the reconcile unit run for real against the local Docker engine and registry."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from tests.integration.conftest import sandbox_lifetime, write_config
from tests.integration.conftest import sandbox_project as make_sandbox_project

pytestmark = pytest.mark.integration

AMI = "ami-1e749f67"  # one of moto's built-in images
ROLES = ("livekit", "api", "web", "agent")
SENTINELS = {
    "APP_SECRET": "sentinel-app-secret-6f1d2c",
    "LIVEKIT_API_SECRET": "sentinel-livekit-secret-93ab-5e0d7a41c2b9",  # LiveKit wants 32+ characters
}
LIVEKIT_API_KEY = "APIsentinel93ab"
COMPOSE = """\
services:
  app:
    image: {{ images["api"] }}
    init: true
    command: ["/bin/busybox", "sh", "-c", "mkdir -p /www && echo \\"$$APP_MESSAGE\\" > /www/index.html && exec /bin/busybox httpd -f -p 8080 -h /www"]
    env_file: [{{ env_file }}, {{ secrets_file }}]
    healthcheck:
      test: ["CMD", "/bin/busybox", "sh", "-c", "test \\"$$HEALTHY\\" != 0 && /bin/busybox wget -qO- http://127.0.0.1:8080/ >/dev/null"]
      interval: 2s
      timeout: 2s
      retries: 3
"""


def sandbox_toml(message: str = "hello", healthy: str = "1", timeout: int = 60) -> str:
    roles = []
    for role in ROLES:
        env = {"APP_MESSAGE": f"{message} from {role}", "HEALTHY": healthy, "BUCKET": "${shared.artifact_bucket}"}
        if role == "agent":
            env["API_BASE_URL"] = "http://${api.private_ip}:8080"
        secrets = ["REGISTRY_USERNAME", "REGISTRY_PASSWORD", "APP_SECRET"]
        if role == "livekit":
            secrets.append("LIVEKIT_API_SECRET")
        env_toml = ", ".join(f'{k} = "{v}"' for k, v in env.items())
        roles.append(
            f"""
[environments.sandbox.roles.{role}]
instance_type = "t3.small"
ami = "{AMI}"
services = ["api"]
compose_template = "compose/app.yml.j2"
health_timeout = {timeout}
secrets = {json.dumps(secrets)}
env = {{ {env_toml} }}
"""
        )
    return (
        '\n[environments.sandbox]\nsandbox = true\nregion = "ap-northeast-2"\ndomain = "sandbox.test"\n'
        '[environments.sandbox.build_args]\nPUBLIC_URL = "https://sandbox.test"\n' + "".join(roles)
    )


@pytest.fixture(scope="module")
def sandbox_project(tmp_path_factory, registry, dockerd, busybox_image, git_root):
    """A project with the app built and pushed once; the sandbox server is stopped at the end."""
    env = {**SENTINELS, "LIVEKIT_API_KEY": LIVEKIT_API_KEY}
    project = make_sandbox_project(tmp_path_factory.mktemp("sandbox"), registry, dockerd, git_root,
                                   {"compose/app.yml.j2": COMPOSE}, sandbox_toml(), env)  # fmt: skip
    with sandbox_lifetime(project, dockerd.host):
        yield project


def deploy(project, *args: str, env: dict | None = None):
    return project.run_json("deploy", "sandbox", "--yes", "--converge-local", *args, env=env)


@pytest.fixture(scope="module")
def first_deploy(sandbox_project):
    result, data = deploy(sandbox_project)
    assert result.exit_code == 0, result.output
    return data


def test_first_deploy_applies_every_stack_and_reaches_healthy(first_deploy):
    data = first_deploy
    assert data["changed"] is True and data["healthy"] is True
    assert set(data["stacks"]) == {"shared", *ROLES}
    assert all(s["applied"] for s in data["stacks"].values())
    assert {r["role"] for r in data["instances"].values()} == set(ROLES)
    assert all(r["status"] == "healthy" and r["running"] == data["release"] for r in data["instances"].values())


def test_release_in_s3_has_verified_sums_and_pointer_written_last(sandbox_project, first_deploy):
    import hashlib

    s3 = sandbox_project.aws.client("s3")
    bucket = sandbox_project.bucket("artifacts")
    release = first_deploy["release"]
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=f"sandbox/releases/{release}/manifest.json")["Body"].read())
    assert set(manifest["roles"]) == set(ROLES)
    times = []
    for role, files in manifest["roles"].items():
        assert set(files) == {"compose.yml", "role.env"} | ({"livekit.yaml.in"} if role == "livekit" else set())
        for name, digest in files.items():
            obj = s3.get_object(Bucket=bucket, Key=f"sandbox/releases/{release}/{role}/{name}")
            assert hashlib.sha256(obj["Body"].read()).hexdigest() == digest
            times.append(obj["LastModified"])
    pointer = s3.get_object(Bucket=bucket, Key="sandbox/current")
    assert json.loads(pointer["Body"].read())["release"] == release
    assert pointer["LastModified"] >= max(times)
    for role in ROLES:  # the rollout moved each role's own pointer after the environment's
        role_pointer = s3.get_object(Bucket=bucket, Key=f"sandbox/roles/{role}/current")
        assert json.loads(role_pointer["Body"].read()) == {"release": release}
        assert role_pointer["LastModified"] >= pointer["LastModified"]
    assert manifest["images"]["api"]["commit"] == first_deploy_commit(sandbox_project)


def first_deploy_commit(project) -> str:
    latest = json.loads((project.root / ".damso" / "builds" / "latest.json").read_text())
    return latest["images"]["api"]["commit"]


def test_containers_run_with_their_secrets(sandbox_project, first_deploy, docker_client):
    (agent,) = [c for c in docker_client.containers.list(filters={"label": "com.docker.compose.project=damso-sandbox-agent"})]
    env = dict(line.split("=", 1) for line in agent.attrs["Config"]["Env"])
    assert env["APP_SECRET"] == SENTINELS["APP_SECRET"]  # the positive control for the leak test
    for container in docker_client.containers.list(filters={"label": "com.docker.compose.project"}):
        if container.labels["com.docker.compose.project"].startswith("damso-sandbox-"):  # only docker login needs it
            assert not any(sandbox_project.registry.password in line for line in container.attrs["Config"]["Env"])
            assert not any(line.startswith("REGISTRY_") for line in container.attrs["Config"]["Env"])
    assert env["API_BASE_URL"].startswith("http://10.0.10.")
    out = agent.exec_run(["/bin/busybox", "wget", "-qO-", "http://127.0.0.1:8080/"]).output.decode()
    assert out.strip() == "hello from agent"


def test_second_deploy_is_a_no_op(sandbox_project, first_deploy):
    result, data = deploy(sandbox_project)
    assert result.exit_code == 0, result.output
    assert data["changed"] is False and data["uploaded"] == 0
    assert not any(s["applied"] for s in data["stacks"].values())
    assert not any(s["planned"] for s in data["stacks"].values())  # code, inputs and state as the apply left them
    assert data["release"] == first_deploy["release"] and data["healthy"]
    result, data = deploy(sandbox_project, "--refresh")  # every stack planned by Terraform, none with changes
    assert result.exit_code == 0, result.output
    assert all(s["planned"] and not s["applied"] for s in data["stacks"].values()) and data["changed"] is False


def test_app_only_change_applies_nothing_and_rolls_out(sandbox_project, first_deploy, docker_client):
    write_config(sandbox_project.root, sandbox_project.registry.host, sandbox_project.repos, sandbox_toml("changed"))
    result, data = deploy(sandbox_project)
    assert result.exit_code == 0, result.output
    assert data["changed"] is True and data["release"] != first_deploy["release"]
    assert not any(s["applied"] for s in data["stacks"].values())
    assert data["uploaded"] == 2 * len(ROLES) + 2  # every role's two files, livekit.yaml.in, the manifest
    (web,) = docker_client.containers.list(filters={"label": "com.docker.compose.project=damso-sandbox-web"})
    assert web.exec_run(["/bin/busybox", "wget", "-qO-", "http://127.0.0.1:8080/"]).output.decode().strip() == "changed from web"


def test_tampered_artifact_is_refused_and_old_release_keeps_running(sandbox_project, first_deploy, docker_client):
    from damso_ops import config
    from damso_ops.deploy.converge import reconcile_command
    from damso_ops.deploy.store import ReleaseStore
    from damso_ops.deploy.target import Target
    aws = sandbox_project.aws
    s3 = aws.client("s3")
    bucket = sandbox_project.bucket("artifacts")
    current = json.loads(s3.get_object(Bucket=bucket, Key="sandbox/current")["Body"].read())["release"]
    # A new release whose web compose file was changed after its sum was recorded.
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=f"sandbox/releases/{current}/manifest.json")["Body"].read())
    manifest["release"] = "tampered-1"
    for role, files in manifest["roles"].items():
        for name in files:
            body = s3.get_object(Bucket=bucket, Key=f"sandbox/releases/{current}/{role}/{name}")["Body"].read()
            if role == "web" and name == "compose.yml":
                body += b"\n# tampered\n"
            s3.put_object(Bucket=bucket, Key=f"sandbox/releases/tampered-1/{role}/{name}", Body=body)
    s3.put_object(Bucket=bucket, Key="sandbox/releases/tampered-1/manifest.json", Body=json.dumps(manifest).encode())
    store = ReleaseStore(s3, bucket, "sandbox")
    store.set_role_release("web", "tampered-1")
    try:
        cfg = config.load(sandbox_project.config)
        target = Target(cfg, "sandbox", aws)
        (instance,) = [i for i, r in store.reports().items() if r["role"] == "web"]
        cmd = reconcile_command(target, "web", instance, bucket)
        env = {**os.environ, **cmd.env, "DOCKER_HOST": sandbox_project.env["DOCKER_HOST"]}
        proc = subprocess.run(cmd.argv, cwd=cmd.cwd, env=env, capture_output=True, text=True)
        assert proc.returncode == 1
        report = json.loads(s3.get_object(Bucket=bucket, Key=f"sandbox/reports/{instance}.json")["Body"].read())
        assert report["status"] == "rejected" and "checksum mismatch for web/compose.yml" in report["error"]
        assert report["running"] == current
        (web,) = docker_client.containers.list(filters={"label": "com.docker.compose.project=damso-sandbox-web"})
        assert web.status == "running"
    finally:
        store.set_role_release("web", current)


def test_unhealthy_release_halts_rolls_back_and_shows_why(sandbox_project, first_deploy, docker_client):
    write_config(sandbox_project.root, sandbox_project.registry.host, sandbox_project.repos,
                 sandbox_toml("sick", healthy="0", timeout=15))  # fmt: skip
    try:
        result, data = deploy(sandbox_project, "--only", "web", "--timeout", "40")
        assert result.exit_code == 4, result.output
        assert re.fullmatch(r"Rollout of \S+ halted at wave 1 \(web\): Release \S+ is not healthy\.", data["error"]), data
        assert "web (" in result.output and "app: " in result.output and "health unhealthy" in result.output
        assert data["rollout"]["state"] == "rolled_back" and data["rollout"]["rolled_back"] == ["web"]
        (web,) = docker_client.containers.list(filters={"label": "com.docker.compose.project=damso-sandbox-web"})
        assert web.exec_run(["/bin/busybox", "wget", "-qO-", "http://127.0.0.1:8080/"]).output.decode().strip() == "changed from web"
    finally:
        write_config(sandbox_project.root, sandbox_project.registry.host, sandbox_project.repos, sandbox_toml("changed"))
        restored, _ = deploy(sandbox_project)
        assert restored.exit_code == 0, restored.output


def test_no_secret_leaks_anywhere(sandbox_project, first_deploy):
    """Sentinel secret values appear in SSM (and the containers) and nowhere else."""
    aws = sandbox_project.aws
    s3, ssm, ec2 = aws.client("s3"), aws.client("ssm"), aws.client("ec2")
    values = [*SENTINELS.values(), sandbox_project.registry.password]
    stored = ssm.get_parameter(Name="/damso/sandbox/livekit/LIVEKIT_API_SECRET", WithDecryption=True)["Parameter"]
    assert stored["Value"] == SENTINELS["LIVEKIT_API_SECRET"] and stored["Type"] == "SecureString"

    def assert_clean(what: str, text: str) -> None:
        for value in values:
            assert value not in text, f"a secret leaked into {what}"

    # What this test prints itself (so it checks as much when run alone), then all the module printed.
    for args in (("--verbose", "deploy", "sandbox", "--yes", "--converge-local"), ("plan", "sandbox", "--full"),
                 ("diff", "sandbox"), ("status", "sandbox"), ("--verbose", "status", "sandbox", "--json"),
                 ("releases", "sandbox"), ("logs", "sandbox", "api"), ("logs", "sandbox", "livekit", "--json"),
                 ("secrets", "list", "sandbox"), ("livekit", "status", "--env", "sandbox")):
        assert sandbox_project.run(*args).exit_code in (0, 1), args  # status exits 1 on any problem
    assert len(sandbox_project.outputs) >= 12
    for i, output in enumerate(sandbox_project.outputs):
        assert_clean(f"console output #{i}", output)
    for bucket in (b["Name"] for b in s3.list_buckets()["Buckets"]):
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            for v in page.get("Versions", []):
                body = s3.get_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])["Body"].read()
                assert_clean(f"s3://{bucket}/{v['Key']}", body.decode(errors="replace"))
    state_dir = sandbox_project.root / ".damso"
    checked = 0
    for path in state_dir.rglob("*"):
        if path.is_file() and "hosts" not in path.parts and path.suffix != ".lock":
            assert_clean(str(path), path.read_bytes().decode(errors="replace"))
            checked += 1
    assert (state_dir / "logs" / "damso.log").is_file() and checked > 10
    for plan in state_dir.rglob("damso.tfplan"):
        shown = subprocess.run(["terraform", "show", "-json", plan.name], cwd=plan.parent, capture_output=True, text=True,
                               env={**os.environ, "TF_CLI_CONFIG_FILE": "/dev/null"})  # fmt: skip
        assert_clean(f"plan {plan}", shown.stdout)
    for reservation in ec2.describe_instances()["Reservations"]:
        for inst in reservation["Instances"]:
            attr = ec2.describe_instance_attribute(InstanceId=inst["InstanceId"], Attribute="userData")
            import base64

            user_data = base64.b64decode(attr["UserData"].get("Value", "")).decode(errors="replace")
            assert "damso-reconcile" in user_data  # it is the bootstrap indeed
            assert_clean(f"user-data of {inst['InstanceId']}", user_data)


def test_a_rotated_secret_leaves_no_old_value_on_the_host(sandbox_project, first_deploy, docker_client):
    """`damso secrets set` then a deploy: the role's hosts run the new value, and the old one is in
    none of the host's files and no container's environment (the other roles keep their own)."""
    old, new = SENTINELS["APP_SECRET"], "sentinel-rotated-secret-0b7e44"
    stored = sandbox_project.run("secrets", "set", "sandbox", "api", "APP_SECRET", "--from-env", "ROTATED",
                                 env={"ROTATED": new})  # fmt: skip
    assert stored.exit_code == 0, stored.output
    result, data = deploy(sandbox_project)
    assert result.exit_code == 0, result.output
    assert data["changed"] and data["healthy"]  # a rotation is a new release: the hosts apply it
    (instance,) = [i for i, r in data["instances"].items() if r["role"] == "api"]
    host = sandbox_project.root / ".damso" / "sandbox" / "hosts" / instance
    texts = {path: path.read_bytes().decode(errors="replace") for path in host.rglob("*") if path.is_file()}
    assert any(new in text for path, text in texts.items() if path.name == "secrets.env")  # the positive control
    assert not [str(path) for path, text in texts.items() if old in text]
    containers = [c for c in docker_client.containers.list(all=True, filters={"label": "com.docker.compose.project"})
                  if c.labels["com.docker.compose.project"] == "damso-sandbox-api"]  # fmt: skip
    assert containers and all(f"APP_SECRET={new}" in c.attrs["Config"]["Env"] for c in containers)
    assert not any(old in line for c in containers for line in c.attrs["Config"]["Env"])


def test_plan_and_diff_show_changes_and_apply_nothing(sandbox_project, first_deploy):
    s3 = sandbox_project.aws.client("s3")
    bucket = sandbox_project.bucket("artifacts")
    before = s3.get_object(Bucket=bucket, Key="sandbox/current")["Body"].read()
    result = sandbox_project.run("plan", "sandbox")
    assert result.exit_code == 0, result.output
    assert "files: unchanged against the current release" in result.stdout
    for stack in ("shared", *ROLES):
        assert f"{stack}: no changes" in result.stdout
    write_config(sandbox_project.root, sandbox_project.registry.host, sandbox_project.repos, sandbox_toml("planned"))
    try:
        diff = sandbox_project.run("diff", "sandbox")
        assert diff.exit_code == 0, diff.output
        assert "files: web/role.env changes" in diff.stdout
        assert "\n-APP_MESSAGE=" in diff.stdout and "\n+APP_MESSAGE=planned from web" in diff.stdout
    finally:
        write_config(sandbox_project.root, sandbox_project.registry.host, sandbox_project.repos, sandbox_toml("changed"))
    assert s3.get_object(Bucket=bucket, Key="sandbox/current")["Body"].read() == before


def test_destroy_needs_typed_confirmation_then_destroys_one_role(sandbox_project, first_deploy):
    ec2 = sandbox_project.aws.client("ec2")

    def running_roles() -> set[str]:
        tags = [{t["Key"]: t["Value"] for t in i.get("Tags", [])} for r in ec2.describe_instances()["Reservations"]
                for i in r["Instances"] if i["State"]["Name"] != "terminated"]  # fmt: skip
        return {t.get("Role") for t in tags}

    refused = sandbox_project.damso("destroy", "sandbox", "--only", "web")
    assert refused.exit_code == 2 and "Refusing to destroy sandbox without confirmation; pass --confirm sandbox." in refused.output
    wrong = sandbox_project.damso("destroy", "sandbox", "--only", "web", "--confirm", "prod")
    assert wrong.exit_code == 2 and "does not match" in wrong.output
    assert "web" in running_roles()
    result = sandbox_project.damso("destroy", "sandbox", "--only", "web", "--confirm", "sandbox", "--json")
    assert result.exit_code == 0, result.output
    import json as _json

    assert _json.loads(result.stdout)["destroyed"] == ["web"]
    assert running_roles() == {"livekit", "api", "agent"}
