"""damso logs against the sandbox: containers of two instances of one role log through the shared
Docker engine's awslogs driver to the emulator's CloudWatch Logs (their engine takes the
emulator's fake credentials from its own route), and `damso logs -f` shows their lines merged in
time order, each with its instance and container, a secret value masked; --since and --grep
narrow what is shown; `docker logs` keeps working on the host (dual logging)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from datetime import datetime, timezone

import pytest

from tests.integration.conftest import sandbox_lifetime, wait_until
from tests.integration.conftest import sandbox_project as make_sandbox_project
from tests.integration.test_deploy_sandbox import AMI

pytestmark = pytest.mark.integration

ENV = "logsbox"
SECRET = "sentinel-logs-secret-4b1f9e"
# The app says what a test writes into its FIFO, so a line is written exactly when the test says.
COMPOSE = """\
services:
  app:
    image: {{ images["api"] }}
    init: true
    command: ["/bin/busybox", "sh", "-c", "mkfifo /say && echo started && while true; do cat /say; done"]
    env_file: [{{ env_file }}, {{ secrets_file }}]
    logging: {{ logging("app") }}
"""
TOML = f"""
[environments.{ENV}]
sandbox = true
region = "ap-northeast-2"
[environments.{ENV}.build_args]
PUBLIC_URL = "https://logs.test"
[environments.{ENV}.roles.api]
ami = "{AMI}"
count = 2
services = ["api"]
compose_template = "compose/app.yml.j2"
health_timeout = 30
secrets = ["REGISTRY_USERNAME", "REGISTRY_PASSWORD", "APP_SECRET"]
"""


@pytest.fixture(scope="module")
def logsbox(tmp_path_factory, registry, dockerd, busybox_image, git_root, docker_client):
    """The environment deployed, and its two api containers: instance id → container."""
    project = make_sandbox_project(tmp_path_factory.mktemp("logs"), registry, dockerd, git_root,
                                   {"compose/app.yml.j2": COMPOSE}, TOML, {"APP_SECRET": SECRET})  # fmt: skip
    project.compose_prefix = f"damso-{ENV}-"
    with sandbox_lifetime(project, dockerd.host):
        result, data = project.run_json("deploy", ENV, "--yes", "--converge-local")
        assert result.exit_code == 0, result.output
        containers = {}
        for c in docker_client.containers.list(filters={"label": "com.docker.compose.project"}):
            if c.labels["com.docker.compose.project"].startswith(project.compose_prefix):
                stream = c.attrs["HostConfig"]["LogConfig"]["Config"]["awslogs-stream"]
                containers[stream.split("/")[0]] = c
        assert sorted(containers) == sorted(i for i, r in data["instances"].items() if r["role"] == "api")
        project.containers = containers
        yield project


def say(container, text: str) -> None:
    """The app writes `text` (the shell in the container expands $APP_SECRET) as one log line."""
    code, output = container.exec_run(["/bin/busybox", "sh", "-c", f'echo "{text}" > /say'])
    assert code == 0, output


def iso(when: float) -> str:
    return datetime.fromtimestamp(when, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_follow_merges_both_instances_in_time_order_masked(logsbox):
    a, b = sorted(logsbox.containers)
    proc = logsbox.spawn("logs", ENV, "api", "-f", "--since", "10m")
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        wait_until(lambda: sum("| started" in line for line in seen) == 2, 30, "both apps' first line", proc)
        say(logsbox.containers[a], "one from a")
        time.sleep(0.3)
        say(logsbox.containers[b], "two from b")
        time.sleep(0.3)
        say(logsbox.containers[a], "three from a")
        say(logsbox.containers[b], "token $APP_SECRET")
        wait_until(lambda: any("token" in line for line in seen), 15, "the last line", proc)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
        reader.join(5)
    said = [line.split(" ", 1)[1].rstrip("\n") for line in seen if " | " in line and "started" not in line]
    assert said == [f"{a} app | one from a", f"{b} app | two from b", f"{a} app | three from a", f"{b} app | token ********"]
    assert SECRET not in "".join(seen)
    logsbox.said = {line.rsplit("| ", 1)[1].rstrip("\n"): line.split(" ", 1)[0] for line in seen if " | " in line}


def test_since_and_grep_narrow_it(logsbox):
    said = logsbox.said  # message → time, from the test above
    between = datetime.fromisoformat(said["two from b"].replace("Z", "+00:00")).timestamp() + 0.001
    result = logsbox.run("logs", ENV, "api", "--since", iso(between))
    assert result.exit_code == 0, result.output
    assert [line.rsplit("| ", 1)[1] for line in result.stdout.splitlines()] == ["three from a", "token ********"]
    result = logsbox.run("logs", ENV, "api", "--grep", '"from a"', "--since", "10m")
    assert [line.rsplit("| ", 1)[1] for line in result.stdout.splitlines()] == ["one from a", "three from a"]
    a = sorted(logsbox.containers)[0]
    result = logsbox.run("logs", ENV, "api", "app", "--instance", a, "--lines", "1", "--json")
    assert result.exit_code == 0 and '"message": "three from a"' in result.stdout and len(result.stdout.splitlines()) == 1


def test_docker_logs_still_works_on_the_host(logsbox):
    a = sorted(logsbox.containers)[0]
    assert logsbox.containers[a].logs().decode().splitlines() == ["started", "one from a", "three from a"]


def test_the_script_damso_exec_sends_runs_on_a_sandbox_host(logsbox):
    """What the SSM agent would run (the emulator runs nothing), run here with the files the host's
    reconcile unit left: in the container through this machine's compose, and on the host."""
    from damso_ops.operate import remote

    a = sorted(logsbox.containers)[0]
    env = {**os.environ, "DOCKER_HOST": logsbox.env["DOCKER_HOST"], "DAMSO_ENV": ENV, "DAMSO_ROLE": "api",
           "DAMSO_WORKDIR": str(logsbox.root / ".damso" / "sandbox" / "hosts" / a),
           "DAMSO_COMPOSE_PROJECT": logsbox.containers[a].labels["com.docker.compose.project"]}  # fmt: skip
    inside = subprocess.run(["sh", "-c", remote.host_script(["/bin/busybox", "sh", "-c", "echo in $HOSTNAME; exit 3"], "app")],
                            env=env, capture_output=True, text=True)  # fmt: skip
    assert (inside.returncode, inside.stdout) == (3, f"in {logsbox.containers[a].attrs['Config']['Hostname']}\n"), inside.stderr
    host = subprocess.run(["sh", "-c", remote.host_script(["sh", "-c", "pwd; exit 4"])], env=env, capture_output=True, text=True)
    assert (host.returncode, host.stdout) == (4, "/\n")
