"""Ordered rollouts in the sandbox: waves api → web → agent, two api instances that never are
down together, halt and roll back, an interrupted rollout completed by the next deploy. Hosts
converge for real (the reconcile unit on this machine's engine, --converge-local; the two api
instances as two compose projects with their own ports); order is read from S3 object
versions, never from sleeps."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import threading
import time
import urllib.request

import pytest

from tests.integration.conftest import sandbox_lifetime, wait_until, write_config
from tests.integration.conftest import sandbox_project as make_sandbox_project
from tests.integration.test_deploy_sandbox import AMI

pytestmark = pytest.mark.integration

ENV = "waves"
ROLES = ("api", "web", "agent")
COMPOSE = """\
services:
  app:
    image: {{ images["api"] }}
    init: true
{%% if role == "api" %%}    ports: ["127.0.0.1:%s${DAMSO_INSTANCE_INDEX:-0}:8080"]
{%% endif %%}    command: ["/bin/busybox", "sh", "-c", "echo \\"$$APP_MESSAGE\\"; mkdir -p /www && echo \\"$$APP_MESSAGE\\" > /www/index.html && exec /bin/busybox httpd -f -p 8080 -h /www"]
    env_file: [{{ env_file }}, {{ secrets_file }}]
    healthcheck:
      test: ["CMD", "/bin/busybox", "sh", "-c", "test \\"$$HEALTHY\\" != 0 && /bin/busybox wget -qO- http://127.0.0.1:8080/ >/dev/null"]
      interval: 1s
      timeout: 2s
      retries: 3
"""


def port_prefix(module: str) -> str:
    """A 4-digit prefix P whose ports P0..P9 are free here: instance i of a role publishes P<i>.
    Each test module that publishes ports starts its search elsewhere: they are imported, and
    their ports checked, in several pytest-xdist workers at once, long before they bind them."""
    start = 3100 + 7 * (sum(module.encode()) % 24)  # below Linux's ephemeral ports (32768 on) first
    for prefix in [*range(start, 3270, 7), *range(3100, start, 7), *range(3270, 6500, 7)]:
        try:
            for i in range(10):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", prefix * 10 + i))
            return str(prefix)
        except OSError:
            continue
    raise RuntimeError("no free port range")


PREFIX = port_prefix(__name__)


def waves_toml(message: str, broken: str = "") -> str:
    roles = "".join(
        f"""
[environments.{ENV}.roles.{role}]
ami = "{AMI}"
count = {2 if role == "api" else 1}
services = ["api"]
compose_template = "compose/app.yml.j2"
health_timeout = 20
secrets = ["REGISTRY_USERNAME", "REGISTRY_PASSWORD"]
env = {{ APP_MESSAGE = "{message} from {role}", HEALTHY = "{0 if role == broken else 1}" }}
"""
        for role in ROLES
    )
    return (f'\n[environments.{ENV}]\nsandbox = true\nregion = "ap-northeast-2"\n'
            f'rollout = [["api"], ["web"], ["agent"]]\n'
            f'[environments.{ENV}.build_args]\nPUBLIC_URL = "https://waves.test"\n{roles}')  # fmt: skip


@pytest.fixture(scope="module")
def waves(tmp_path_factory, registry, dockerd, busybox_image, git_root):
    project = make_sandbox_project(tmp_path_factory.mktemp("rollout"), registry, dockerd, git_root,
                                   {"compose/app.yml.j2": COMPOSE % PREFIX}, waves_toml("one"), {})  # fmt: skip
    project.compose_prefix = f"damso-{ENV}-"
    with sandbox_lifetime(project, dockerd.host):
        started = time.monotonic()
        result, data = deploy(project)
        assert result.exit_code == 0, result.output
        project.first_seconds = time.monotonic() - started
        yield project


def configure(project, message: str, broken: str = "") -> None:
    write_config(project.root, project.registry.host, project.repos, waves_toml(message, broken))


def deploy(project, *args: str):
    return project.run_json("deploy", ENV, "--yes", "--converge-local", *args)


def versions(project, key: str) -> list[tuple[object, dict]]:
    """(S3's LastModified, body) of every version of an object, oldest first."""
    s3, bucket = project.aws.client("s3"), project.bucket(f"{ENV}-artifacts")
    found = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=key):
        for v in page.get("Versions", []):
            if v["Key"] == key:
                body = s3.get_object(Bucket=bucket, Key=key, VersionId=v["VersionId"])["Body"].read()
                found.append((v["LastModified"], json.loads(body)))
    return sorted(found, key=lambda item: item[0])


def instances_of(data: dict, role: str) -> list[str]:
    return sorted(i for i, r in data["instances"].items() if r["role"] == role)


def instance_of(data: dict, role: str) -> str:
    (instance,) = instances_of(data, role)
    return instance


def test_first_rollout_moves_every_wave_and_ends_done(waves):
    pointer = json.loads((waves.aws.client("s3").get_object(Bucket=waves.bucket(f"{ENV}-artifacts"),
                                                            Key=f"{ENV}/rollout.json"))["Body"].read())  # fmt: skip
    assert pointer["state"] == "done" and pointer["waves"] == [["api"], ["web"], ["agent"]]
    print(f"\nfirst deploy with three waves (terraform applies included): {waves.first_seconds:.1f} s")


def test_web_moves_only_after_api_reports_the_new_release_healthy(waves):
    configure(waves, "two")
    started = time.monotonic()
    result, data = deploy(waves)
    seconds = time.monotonic() - started
    assert result.exit_code == 0, result.output
    release = data["release"]
    assert data["rollout"]["state"] == "done" and data["healthy"]
    healthy_api = [max(min(t for t, r in versions(waves, f"{ENV}/reports/{api}.json")
                           if r["running"] == release and r["status"] == "healthy") for api in instances_of(data, "api"))]
    web_moves = [t for t, p in versions(waves, f"{ENV}/roles/web/current") if p["release"] == release]
    agent_moves = [t for t, p in versions(waves, f"{ENV}/roles/agent/current") if p["release"] == release]
    web_reports = versions(waves, f"{ENV}/reports/{instance_of(data, 'web')}.json")
    assert healthy_api and web_moves and agent_moves
    assert web_moves[0] >= healthy_api[0], "web moved before api reported the new release healthy"
    # web still ran the old release while api turned healthy on the new one
    before = [r for t, r in web_reports if t <= healthy_api[0]]
    assert before and before[-1]["running"] != release
    healthy_web = [t for t, r in web_reports if r["running"] == release and r["status"] == "healthy"]
    assert agent_moves[0] >= healthy_web[0]
    print(f"\nthree-wave app rollout (api → web → agent) in the sandbox: {seconds:.1f} s")


def test_a_broken_web_halts_the_rollout_and_is_rolled_back(waves, docker_client):
    before, _ = deploy(waves)  # settled: nothing moves
    assert before.exit_code == 0
    old = json.loads(waves.aws.client("s3").get_object(Bucket=waves.bucket(f"{ENV}-artifacts"),
                                                       Key=f"{ENV}/roles/agent/current")["Body"].read())["release"]  # fmt: skip
    configure(waves, "three", broken="web")
    try:
        result, data = deploy(waves)
        assert result.exit_code == 4, result.output
        assert re.fullmatch(r"Rollout of \S+ halted at wave 2 \(web\): Release \S+ is not healthy\.", data["error"]), data
        rollout = data["rollout"]
        new = rollout["release"]
        assert rollout["state"] == "rolled_back" and rollout["rolled_back"] == ["web"]
        assert rollout["failed"]["wave"] == 2 and rollout["failed"]["roles"] == ["web"]
        web_report = next(r for r in rollout["failed"]["reports"].values() if r.get("role") == "web")
        (app,) = web_report["containers"]
        assert app["health"] == "unhealthy" and "three from web" in app["logs"]
        assert "| three from web" in data["details"]
        store = waves.aws.client("s3")
        bucket = waves.bucket(f"{ENV}-artifacts")

        def pointer(role: str) -> str:
            return json.loads(store.get_object(Bucket=bucket, Key=f"{ENV}/roles/{role}/current")["Body"].read())["release"]

        assert pointer("api") == new and pointer("web") == old and pointer("agent") == old
        assert [p for _, p in versions(waves, f"{ENV}/roles/agent/current") if p["release"] == new] == []  # never moved
        status, sdata = waves.run_json("--verbose", "status", ENV)
        assert status.exit_code == 1, status.output
        assert any("halted at wave 2 (web), rolled back: web" in p for p in sdata["problems"])
        by_role = {i["role"]: i for i in sdata["instances"]}
        assert by_role["api"]["release_running"] == new and by_role["api"]["health"] == "healthy"
        assert by_role["web"]["release_running"] == old and by_role["web"]["health"] == "healthy"
        assert by_role["agent"]["release_running"] == old and by_role["agent"]["rollout"].startswith("halted at wave 2")
        (web,) = docker_client.containers.list(filters={"label": f"com.docker.compose.project=damso-{ENV}-web"})
        assert web.exec_run(["/bin/busybox", "wget", "-qO-", "http://127.0.0.1:8080/"]).output.decode().strip() == "two from web"
        history, hdata = waves.run_json("releases", ENV, "--limit", "1")
        assert hdata["releases"][0]["rollout"]["state"] == "rolled_back"
        assert hdata["releases"][0]["rollout"]["failed_roles"] == ["web"]
    finally:
        configure(waves, "two")
    again, data = deploy(waves)
    assert again.exit_code == 0, again.output


def test_a_deploy_killed_between_waves_is_finished_by_the_next(waves):
    configure(waves, "four")
    s3, bucket = waves.aws.client("s3"), waves.bucket(f"{ENV}-artifacts")

    def at_wave_two():
        state = json.loads(s3.get_object(Bucket=bucket, Key=f"{ENV}/rollout.json")["Body"].read())
        return state if state.get("wave") == 2 and state.get("state") == "moving" else None

    proc = waves.spawn("deploy", ENV, "--yes", "--converge-local")
    try:
        state = wait_until(at_wave_two, 240, "the rollout to reach wave 2", proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    refused = waves.run("deploy", ENV, "--yes", "--converge-local")
    assert refused.exit_code == 3 and "is locked" in refused.output  # the killed deploy's lock
    told, told_json = waves.run("status", ENV), waves.run_json("status", ENV)[1]
    assert told.exit_code == 1, told.output
    assert f"(pid {proc.pid})" in told.output and f"stale lock): run 'damso unlock {ENV}'" in told.output
    assert f"rollout of {state['release']}: was interrupted at wave 2" in told.output and "is moving" not in told.output
    assert told_json["lock"]["holder_state"] == "gone" and told_json["rollout"]["state"] == "interrupted"
    assert waves.run("unlock", ENV, "--yes").exit_code == 0
    result, data = deploy(waves)
    assert result.exit_code == 0, result.output
    assert data["release"] == state["release"] and data["rollout"]["state"] == "done"
    assert "resuming the rollout of" in result.output
    assert all(r["running"] == state["release"] and r["status"] == "healthy" for r in data["instances"].values())


def test_two_api_instances_move_one_at_a_time_and_are_never_down_together(waves):
    """A prober asks both api instances every 0.5 s during the rollout."""
    configure(waves, "five")
    ports = [int(f"{PREFIX}{i}") for i in (0, 1)]
    seen: list[tuple[bool, bool]] = []
    stop = threading.Event()

    def up(port: int) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def probe() -> None:
        while not stop.is_set() and len(seen) < 2400:  # at most 20 minutes
            seen.append((up(ports[0]), up(ports[1])))
            stop.wait(0.5)

    assert all(up(port) for port in ports)  # both serve the old release
    prober = threading.Thread(target=probe, daemon=True)
    prober.start()
    try:
        result, data = deploy(waves)
    finally:
        stop.set()
        prober.join()
    assert result.exit_code == 0, result.output
    assert len(seen) >= 10 and (False, False) not in seen
    apis = instances_of(data, "api")
    assert len(apis) == 2 and all(data["instances"][i]["running"] == data["release"] for i in apis)
    first, second = sorted(apis, key=lambda i: data["instances"][i]["time"])
    healthy_first = min(t for t, r in versions(waves, f"{ENV}/reports/{first}.json")
                        if r["running"] == data["release"] and r["status"] == "healthy")  # fmt: skip
    moved_second = min(t for t, r in versions(waves, f"{ENV}/reports/{second}.json") if r["release"] == data["release"])
    assert moved_second >= healthy_first, "the second api instance moved before the first was healthy again"
    for port in ports:
        assert urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read().decode().strip() == "five from api"
