"""Why a container is unhealthy, in one sentence (damso_ops/operate/diagnose.py), from report
records shaped as the host's reconcile unit writes them: docker inspect's State as docker
shapes it (RFC 3339 times with nanoseconds, Health.Log of at most 5 probes), plus the
restarts, memory limit and depends_on label that newer hosts add; and old records without them."""

from __future__ import annotations

import pytest

from damso_ops.deploy.converge import DeployUnhealthy
from damso_ops.deploy.rollout import RolloutHalted
from damso_ops.errors import DamsoError
from damso_ops.operate import diagnose

LOGS = [f"line {n}" for n in range(1, 9)]


def probe(start: str, end: str, code: int, output: str) -> dict:
    return {"Start": f"2026-03-01T09:{start}.123456789Z", "End": f"2026-03-01T09:{end}.223456789Z", "ExitCode": code,
            "Output": output}  # fmt: skip


def record(status: str, health: str = "none", *, ok: bool = False, logs=None, **state) -> dict:
    """A not-ok container of a report, its inspect_state as docker inspect shapes State."""
    inspect = {"Status": status, "Running": status == "running", "Paused": False, "Restarting": status == "restarting",
               "OOMKilled": False, "Dead": False, "Pid": 0, "ExitCode": 0, "Error": "",
               "StartedAt": "2026-03-01T09:00:00.000000001Z", "FinishedAt": "0001-01-01T00:00:00Z", **state}  # fmt: skip
    return {"name": "api", "image": "registry.test/team/api@sha256:" + "1" * 64, "image_id": "sha256:local",
            "state": status, "health": health, "ok": ok, "logs": LOGS if logs is None else logs, "inspect_state": inspect}  # fmt: skip


def test_out_of_memory_with_its_limit_and_restarts():
    c = record("exited", ExitCode=137, OOMKilled=True, FinishedAt="2026-03-01T09:05:00.5Z")
    c.update(restarts=2, memory=2 * 1024**3, created="2026-03-01T09:00:00.000000001Z")
    assert diagnose.diagnose(c) == "exited with code 137 (killed: out of memory, limit 2 GiB) 3 times in 5 min"
    assert diagnose.explain(c) == {"diagnosis": diagnose.diagnose(c), "last_logs": LOGS[-5:]}


def test_out_of_memory_without_a_limit_or_restarts_in_the_report():
    c = record("exited", ExitCode=137, OOMKilled=True)  # an old host: no restarts, memory, created
    assert diagnose.diagnose(c) == "exited with code 137 (killed: out of memory)"
    c["memory"] = 0  # no limit set
    assert diagnose.diagnose(c) == "exited with code 137 (killed: out of memory)"
    c["memory"] = 512 * 1024**2
    assert diagnose.diagnose(c) == "exited with code 137 (killed: out of memory, limit 512 MiB)"


def test_a_sigkill_under_a_memory_limit_the_engine_did_not_call_oom_is_likely_out_of_memory():
    """Seen on this project's test engine (dockerd 20.10, cgroup v1 in a container): a container killed
    at its 8 MiB limit exits 137 with OOMKilled false. Only with a limit does 137 point at memory."""
    c = record("exited", ExitCode=137, OOMKilled=False)
    c["memory"] = 8 * 1024**2
    assert diagnose.diagnose(c) == "exited with code 137 (killed (SIGKILL), memory limit 8 MiB: likely out of memory)"
    c["memory"] = 0
    assert diagnose.diagnose(c) == "exited with code 137 (killed (SIGKILL))"


@pytest.mark.parametrize(("code", "words"), [
    (137, "exited with code 137 (killed (SIGKILL))"),
    (143, "exited with code 143 (stopped (SIGTERM))"),
    (139, "exited with code 139 (crashed: segmentation fault (SIGSEGV))"),
    (126, "exited with code 126 (the command is not runnable)"),
    (127, "exited with code 127 (the command was not found)"),
])  # fmt: skip
def test_exit_codes_in_words(code, words):
    assert diagnose.diagnose(record("exited", ExitCode=code)) == words


def test_the_apps_own_exit_code_with_its_last_line():
    c = record("exited", ExitCode=1, logs=["starting", "Error: DATABASE_URL is not set", "", "  "])
    assert diagnose.diagnose(c) == "exited with code 1: Error: DATABASE_URL is not set"
    assert diagnose.diagnose(record("exited", ExitCode=3, logs=[])) == "exited with code 3"


def test_the_engines_own_error_wins_over_the_last_line():
    c = record("exited", ExitCode=128, Error='exec: "/app/run": permission denied')
    assert diagnose.diagnose(c) == 'exited with code 128: exec: "/app/run": permission denied'


def test_a_failing_health_check_for_how_long_and_its_output():
    log = [probe("00:00", "00:01", 0, "ok\n")] + [
        probe(f"0{m}:00", f"0{m}:02", 1, "  % Total    % Received % Xferd\n\ncurl: (7) Failed to connect to 127.0.0.1 port 8000 after 0 ms\n")
        for m in range(1, 5)]  # fmt: skip
    c = record("running", "unhealthy", Health={"Status": "unhealthy", "FailingStreak": 4, "Log": log})
    assert diagnose.diagnose(c) == ("health check failing for 3 min (4 probes in a row): "
                                    "curl: (7) Failed to connect to 127.0.0.1 port 8000 after 0 ms")  # fmt: skip


def test_a_long_failing_streak_beyond_the_five_probes_docker_keeps():
    log = [probe(f"0{m}:00", f"0{m}:01", 1, "curl: (22) The requested URL returned error: 500") for m in range(5)]
    c = record("running", "unhealthy", Health={"Status": "unhealthy", "FailingStreak": 9, "Log": log})
    assert diagnose.diagnose(c) == ("health check failing for about 8 min (9 probes in a row): "
                                    "curl: (22) The requested URL returned error: 500")  # fmt: skip


def test_a_silent_or_timed_out_health_check():
    silent = record("running", "unhealthy", Health={"Status": "unhealthy", "FailingStreak": 1,
                                                     "Log": [probe("00:00", "00:03", 1, "")]})  # fmt: skip
    assert diagnose.diagnose(silent) == "health check failing for 3 s (1 probe in a row): the check exited with code 1 and printed nothing"
    timeout = record("running", "unhealthy", Health={"Status": "unhealthy", "FailingStreak": 3, "Log": [
        probe("00:00", "00:30", -1, "Health check exceeded timeout (30s)")]})  # fmt: skip
    assert diagnose.diagnose(timeout).endswith(": Health check exceeded timeout (30s)")
    numbers = record("running", "unhealthy", Health={"Status": "unhealthy", "FailingStreak": 1, "Log": [
        probe("00:00", "00:01", 1, "\n503\n")]})  # fmt: skip
    assert diagnose.diagnose(numbers).endswith(": 503")


def test_waiting_for_a_dependency_that_is_not_healthy():
    stt = record("running", "unhealthy", Health={"Status": "unhealthy", "FailingStreak": 3, "Log": []})
    stt["name"] = "stt"
    agent = record("created")
    agent.update(name="agent", depends_on="redis:service_started:false,stt:service_healthy:false")
    redis = {"name": "redis", "state": "running", "health": "none", "ok": True, "logs": []}
    report = {"status": "unhealthy", "containers": [redis, stt, agent]}
    assert diagnose.diagnose(agent, report) == "waiting for stt (depends_on: service_healthy)"
    assert diagnose.diagnose(agent) == "waiting for redis (depends_on: service_started)"  # without the others: the first one


def test_a_created_container_without_dependencies():
    assert diagnose.diagnose(record("created")) == "created but never started"
    failed = record("created", Error="driver failed programming external connectivity: port is already allocated")
    assert diagnose.diagnose(failed) == "could not start: driver failed programming external connectivity: port is already allocated"


def test_a_restart_loop():
    c = record("restarting", ExitCode=1)
    c["restarts"] = 12
    assert diagnose.diagnose(c) == "restarting (12 restarts), last exited with code 1"
    assert diagnose.diagnose(record("restarting", ExitCode=1)) == "restarting, last exited with code 1"


@pytest.mark.parametrize(("error", "sentence"), [
    ("compose pull failed: Error response from daemon: manifest for registry.test/team/api:v9 not found: manifest unknown: manifest unknown",
     "image pull failed: manifest unknown"),
    ("compose pull failed: api Error: Head \"https://registry.test/v2/team/api/manifests/v3\": unauthorized: authentication required",
     "image pull failed: unauthorized"),
    ("compose pull failed: Get \"https://registry.nope/v2/\": dial tcp: lookup registry.nope on 127.0.0.53:53: no such host",
     "image pull failed: registry host not found (no such host)"),
    ("compose pull failed: Error response from daemon: repository registry.test/team/gone not found", "image pull failed: not found"),
    ("compose up -d --remove-orphans failed: Container damso-prod-agent-stt-1  Waiting\n"
     "dependency failed to start: container damso-prod-agent-stt-1 is unhealthy",
     "waiting for stt (depends_on: service_healthy), which is unhealthy"),
    ("checksum mismatch for api/compose.yml: expected aa, got bb", "checksum mismatch for api/compose.yml: expected aa, got bb"),
])  # fmt: skip
def test_a_reports_own_error_in_one_sentence(error, sentence):
    assert diagnose.host_diagnosis(error, {"env": "prod", "role": "agent"}) == sentence


@pytest.mark.parametrize("c", [
    {},
    {"name": "api"},
    {"name": "api", "state": "exited", "health": "none", "ok": False},  # a report from before inspect_state
    {"name": "api", "state": "running", "health": "unhealthy", "ok": False, "inspect_state": {"Status": "running"}},
    {"name": "api", "state": "exited", "ok": False, "inspect_state": {"Status": "exited", "ExitCode": "x", "Health": "odd"}},
    {"name": "api", "state": "running", "ok": False, "logs": "not a list", "restarts": "many", "memory": -1,
     "inspect_state": {"Status": "running", "Health": {"Status": "unhealthy", "FailingStreak": None, "Log": [None, {"Start": 5}]}}},
    {"state": "exited", "ok": False, "inspect_state": {"Status": "exited", "ExitCode": 137, "OOMKilled": True}, "memory": "2g"},
    {"state": "created", "ok": False, "depends_on": 42, "inspect_state": {"Status": "created"}},
    "not a record",
])  # fmt: skip
def test_old_or_odd_records_never_raise_and_fall_back_to_words(c):
    found = diagnose.explain(c, {"containers": "odd"})
    assert isinstance(found["diagnosis"], str) and found["diagnosis"] and isinstance(found["last_logs"], list)
    assert diagnose.host_diagnosis(None) is None and diagnose.host_diagnosis(42) is None


def test_old_records_in_words():
    assert diagnose.diagnose({"state": "exited", "health": "none", "ok": False}) == "exited"
    assert diagnose.diagnose({"state": "running", "health": "unhealthy", "ok": False}) == "health check failing"
    assert diagnose.diagnose({"state": "paused", "health": "none", "ok": False}) == "paused"
    assert diagnose.diagnose({"ok": False}) == "state unknown"
    assert diagnose.explain({"name": "api", "ok": True, "logs": LOGS}) == {"diagnosis": None, "last_logs": []}


def test_a_halted_rollout_says_why_per_failing_container():
    oom = record("exited", ExitCode=137, OOMKilled=True)
    oom.update(name="app", memory=2 * 1024**3)
    reports = {"i-web": {"release": "r2", "status": "unhealthy", "containers": [oom]},
               "i-api": {"release": "r2", "status": "failed", "error": "compose pull failed: x: manifest unknown"}}  # fmt: skip
    exc = DeployUnhealthy("r2", reports, {"i-web": "web", "i-api": "api"}, timed_out=False)
    assert exc.details.splitlines() == [
        "api (i-api): failed: compose pull failed: x: manifest unknown",
        "  image pull failed: manifest unknown",
        "web (i-web): unhealthy",
        "  app: exited, health none",
        "    exited with code 137 (killed: out of memory, limit 2 GiB)",
        *[f"    | {line}" for line in LOGS[-5:]],
    ]
    assert exc.data["failing"] == [
        {"role": "api", "instance_id": "i-api", "container": None, "state": None, "health": None,
         "diagnosis": "image pull failed: manifest unknown", "last_logs": []},
        {"role": "web", "instance_id": "i-web", "container": "app", "state": "exited", "health": "none",
         "diagnosis": "exited with code 137 (killed: out of memory, limit 2 GiB)", "last_logs": LOGS[-5:]},
    ]  # fmt: skip
    state = {"release": "r2", "failed": {"wave": 1, "roles": ["web", "api"]}, "rolled_back": []}
    halted = RolloutHalted(state, exc)
    assert halted.exit_code == 4 and halted.details == exc.details and halted.data["failing"] == exc.data["failing"]
    assert RolloutHalted(state, DamsoError("terraform failed")).data["failing"] == []


def test_the_hosts_report_carries_what_the_diagnosis_needs(monkeypatch):
    """reconcile's describe(): for a container that is not ok, its restarts, memory limit, creation
    time and compose depends_on label next to the (masked) inspect state; nothing more for an ok one."""
    import importlib.util
    import subprocess

    from damso_ops import paths

    spec = importlib.util.spec_from_file_location("reconcile_for_diagnose", paths.data_dir("templates") / "host" / "reconcile.py")
    host_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(host_module)
    host = object.__new__(host_module.Host)
    monkeypatch.setattr(host, "mask_values", lambda: ["s3cr3t-value"], raising=False)
    monkeypatch.setattr(host_module.subprocess, "run", lambda *a, **k: subprocess.CompletedProcess(a, 0, "up\nkey s3cr3t-value\n"))
    raw = {"Id": "abc", "Created": "2026-03-01T09:00:00.1Z", "RestartCount": 2, "HostConfig": {"Memory": 1 << 30},
           "Config": {"Labels": {"com.docker.compose.service": "agent", "com.docker.compose.depends_on": "stt:service_healthy:false"}},
           "State": {"Status": "exited", "ExitCode": 137, "OOMKilled": True, "Error": "s3cr3t-value leaked"}}  # fmt: skip
    ok = {**raw, "Id": "def", "State": {"Status": "running"}}
    sick, fine = host.describe([{"name": "agent", "state": "exited", "health": "none", "ok": False, "_raw": raw},
                                {"name": "web", "state": "running", "health": "none", "ok": True, "_raw": ok}])  # fmt: skip
    assert (sick["restarts"], sick["memory"], sick["created"], sick["depends_on"]) == (
        2, 1 << 30, "2026-03-01T09:00:00.1Z", "stt:service_healthy:false")  # fmt: skip
    assert sick["logs"] == ["up", "key ********"] and sick["inspect_state"]["Error"] == "******** leaked"
    assert "restarts" not in fine and "inspect_state" not in fine
    assert diagnose.diagnose(sick) == "exited with code 137 (killed: out of memory, limit 1 GiB) 3 times: ******** leaked"
