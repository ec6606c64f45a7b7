"""Why a container is unhealthy, in one sentence, against real containers (damso_ops/operate/diagnose.py).

One sandbox environment, one wave of three roles, each failing the ways one compose project can:
- `api` (compose/crash.yml.j2): a service killed at its memory limit, one that exits 3, one whose health check never passes
  (`compose up` starts them all; the host's health wait finds them not ok);
- `web` (compose/deps.yml.j2): a service waiting (depends_on: service_healthy) on one whose check never passes
  (`compose up` itself fails: the report carries the host's error, not containers);
- `agent` (compose/pull.yml.j2): an image the registry never had (`compose pull` fails for the whole role).
The first deploy halts the wave; `damso status` then shows every sentence. The halted output names the
first failing role of the wave only (the wave's roles move in parallel, the first error is raised), so
the two other roles are deployed again alone (--only) for theirs: the same release, no new terraform."""

from __future__ import annotations

import re

import pytest

from tests.integration.conftest import sandbox_lifetime
from tests.integration.conftest import sandbox_project as make_sandbox_project
from tests.integration.test_deploy_sandbox import AMI

pytestmark = pytest.mark.integration

ENV = "diag"
BB = '["/bin/busybox", "sh", "-c"'
CHECK = """    healthcheck:
      test: ["CMD", "/bin/busybox", "sh", "-c", "/bin/busybox wget -qO- http://127.0.0.1:9/ >/dev/null"]
      interval: 1s
      timeout: 2s
      retries: 2
"""
CRASH = f"""\
services:
  oom:
    image: {{{{ images["api"] }}}}
    mem_limit: 8m
    memswap_limit: 8m
    command: {BB}, "echo allocating 64 MiB; x=$$(head -c 64m /dev/zero | tr '\\\\0' a); echo survived"]
  exit:
    image: {{{{ images["api"] }}}}
    command: {BB}, "echo starting; echo 'config missing: DIAG_URL is not set'; exit 3"]
  check:
    image: {{{{ images["api"] }}}}
    command: {BB}, "echo serving nothing; exec /bin/busybox sleep 3600"]
{CHECK}"""
DEPS = f"""\
services:
  gate:
    image: {{{{ images["api"] }}}}
    command: {BB}, "exec /bin/busybox sleep 3600"]
{CHECK}  waiter:
    image: {{{{ images["api"] }}}}
    command: {BB}, "exec /bin/busybox sleep 3600"]
    depends_on:
      gate:
        condition: service_healthy
"""


def pull_compose(registry_host: str) -> str:
    return f"""\
services:
  missing:
    image: {registry_host}/team/api:never-pushed
    command: {BB}, "exec /bin/busybox sleep 3600"]
"""


ROLES = {"api": "crash", "web": "deps", "agent": "pull"}  # role (a stack the sandbox knows) → its failing shape


def toml() -> str:
    roles = ""
    for role, shape in ROLES.items():
        roles += f"""
[environments.{ENV}.roles.{role}]
ami = "{AMI}"
services = ["api"]
compose_template = "compose/{shape}.yml.j2"
health_timeout = 20
secrets = ["REGISTRY_USERNAME", "REGISTRY_PASSWORD"]
"""
    return f"""
[environments.{ENV}]
sandbox = true
region = "ap-northeast-2"
rollback = false
[environments.{ENV}.build_args]
PUBLIC_URL = "https://diag.test"
{roles}"""


OOM = (r"exited with code 137 \((killed: out of memory, limit 8 MiB"  # an engine that saw the OOM kill
       r"|killed \(SIGKILL\), memory limit 8 MiB: likely out of memory)\)")  # one that did not say (OOMKilled false)  # fmt: skip
EXIT = "exited with code 3: config missing: DIAG_URL is not set"
CHECKING = r"health check failing for \d+ s \(\d+ probes in a row\): wget: can't connect to remote host \(127\.0\.0\.1\): Connection refused"
PULL = "image pull failed: manifest unknown"
WAITING = r"waiting for (gate|a dependency of waiter) \(depends_on: service_healthy\), which is unhealthy"
EXPECTED = {  # role → container (None: the host's own error) → sentence (regex)
    "api": {"oom": OOM, "exit": re.escape(EXIT), "check": CHECKING},
    "web": {None: WAITING},
    "agent": {None: re.escape(PULL)},
}
LAST_LOGS = {"oom": ["allocating 64 MiB"], "exit": ["starting", "config missing: DIAG_URL is not set"], "check": ["serving nothing"]}


@pytest.fixture(scope="module")
def diag(tmp_path_factory, registry, dockerd, busybox_image, git_root):
    templates = {"compose/crash.yml.j2": CRASH, "compose/deps.yml.j2": DEPS, "compose/pull.yml.j2": pull_compose(registry.host)}
    project = make_sandbox_project(tmp_path_factory.mktemp("diag"), registry, dockerd, git_root, templates, toml(), {})
    project.compose_prefix = f"damso-{ENV}-"
    with sandbox_lifetime(project, dockerd.host):
        project.halted = {"all": project.run("deploy", ENV, "--yes", "--converge-local")}
        for role in ("web", "agent"):
            project.halted[role] = project.run("deploy", ENV, "--yes", "--converge-local", "--only", role)
        yield project


def block(output: str, container: str) -> list[str]:
    """A failing container's lines in a halted deploy's details: its name line, sentence and last logs."""
    lines = [x.strip() for x in output.splitlines()]
    for n, line in enumerate(lines):
        if line.startswith(f"{container}: "):
            found = lines[n:n + 2]
            for more in lines[n + 2:]:
                if not more.startswith("| "):
                    break
                found.append(more)
            return found
    return []


def test_a_halted_rollout_says_why_each_container_is_unhealthy(diag):
    first = diag.halted["all"]
    assert first.exit_code != 0, first.output
    assert "halted at wave 1" in first.output and "Traceback" not in first.output
    for container, sentence in EXPECTED["api"].items():
        lines = block(first.output, container)
        assert lines and re.fullmatch(sentence, lines[1]), (container, first.output)
        assert [x.removeprefix("| ") for x in lines[2:] if x.startswith("| ")][-len(LAST_LOGS[container]):] == LAST_LOGS[container]
    for role in ("web", "agent"):
        out = diag.halted[role].output
        assert diag.halted[role].exit_code != 0, out
        assert re.search(EXPECTED[role][None], out), (role, out)
    print("\n" + first.output + "".join(diag.halted[r].output for r in ("web", "agent")))


def test_status_shows_the_same_sentences_and_json_carries_them(diag):
    text = diag.run("status", ENV)
    assert text.exit_code == 1, text.output
    result, data = diag.run_json("status", ENV)
    assert data is not None, result.output
    by_role = {i["role"]: i for i in data["instances"]}
    assert set(by_role) == set(EXPECTED)
    for role, wanted in EXPECTED.items():
        entry = by_role[role]
        for container, sentence in wanted.items():
            if container is None:
                assert re.fullmatch(sentence, entry["diagnosis"] or ""), (role, entry)
                if entry["diagnosis"] != entry["error"]:
                    assert f"  {entry['diagnosis']}" in text.output.splitlines()
                else:
                    assert entry["diagnosis"] in text.output
                continue
            (c,) = [c for c in entry["containers"] if c["name"] == container]
            assert re.fullmatch(sentence, c["diagnosis"]), (container, c)
            assert c["last_logs"][-len(LAST_LOGS[container]):] == LAST_LOGS[container]
            assert f"    {c['diagnosis']}" in text.output.splitlines()
            for line in c["last_logs"]:
                assert f"    | {line}" in text.output.splitlines()
    print("\n" + text.output)
