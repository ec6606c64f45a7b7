"""Why a container is unhealthy, in one sentence, from what a host's report already holds.

A report's container record (templates/host/reconcile.py, describe()) has name, state,
health, ok, logs and, for a container that is not ok, `inspect_state` (docker inspect's
State: Status, ExitCode, OOMKilled, Error, StartedAt, FinishedAt, Health.Status,
Health.FailingStreak, Health.Log) and, from newer hosts, `restarts` (RestartCount),
`memory` (HostConfig.Memory, bytes; 0 is no limit), `created` and `depends_on` (compose's
`com.docker.compose.depends_on` label, "svc:condition:restart,…"). A report that failed
before its containers ran carries `error` instead (pull, login, up).

Pure functions: nothing here prints, reads AWS or raises on a missing or odd field (old
reports); without anything better they say the state in words.
"""

from __future__ import annotations

import re

from damso_ops.operate import words

LAST_LOGS = 5

SIGNALS = {  # exit code 128+n: killed by signal n
    130: "interrupted (SIGINT)",
    134: "aborted (SIGABRT)",
    137: "killed (SIGKILL)",
    139: "crashed: segmentation fault (SIGSEGV)",
    143: "stopped (SIGTERM)",
}
NOT_RUNNABLE = {126: "the command is not runnable", 127: "the command was not found"}

PULL_REASONS = (  # (text in the engine's or registry's answer, short reason), first match wins
    ("manifest unknown", "manifest unknown"),
    ("manifest for", "manifest unknown"),
    ("unauthorized", "unauthorized"),
    ("authentication required", "unauthorized"),
    ("denied", "access denied"),
    ("no such host", "registry host not found (no such host)"),
    ("not found", "not found"),
    ("i/o timeout", "registry not reachable (timeout)"),
    ("connection refused", "registry not reachable (connection refused)"),
    ("no space left", "no space left on the host's disk"),
)


def explain(container: dict, report: dict | None = None) -> dict:
    """{"diagnosis", "last_logs"} of a container that is not ok; for an ok one both are empty."""
    if not isinstance(container, dict):
        return {"diagnosis": _in_words(container), "last_logs": []}
    if container.get("ok"):
        return {"diagnosis": None, "last_logs": []}
    return {"diagnosis": diagnose(container, report), "last_logs": last_logs(container)}


def last_logs(container: dict, n: int = LAST_LOGS) -> list[str]:
    logs = container.get("logs") if isinstance(container, dict) else None
    return [str(line) for line in logs[-n:]] if isinstance(logs, list) and n > 0 else []


def diagnose(container: dict, report: dict | None = None) -> str:
    """One sentence: why this container is not running healthy. Never raises."""
    try:
        return _diagnose(container, report or {}) or _in_words(container)
    except Exception:  # noqa: BLE001 - an odd report must never hide the rest of the status
        return _in_words(container)


def host_diagnosis(error: str | None, report: dict | None = None) -> str | None:
    """One sentence for a report's own error (the run failed before containers were judged)."""
    if not error or not isinstance(error, str):
        return None
    try:
        return _host(error, report or {})
    except Exception:  # noqa: BLE001
        return words.first_line(error)


# ---- containers -----------------------------------------------------------------------


def _diagnose(c: dict, report: dict) -> str | None:
    state = c.get("inspect_state") if isinstance(c.get("inspect_state"), dict) else {}
    status = str(state.get("Status") or c.get("state") or "")
    health = state.get("Health") if isinstance(state.get("Health"), dict) else {}
    restarts = words.as_int(c.get("restarts"))

    if status == "created":
        waiting = _waiting(c, report)
        if waiting:
            return waiting
        if state.get("Error"):
            return f"could not start: {words.first_line(state['Error'])}"
        return "created but never started"
    if status == "restarting":
        code = words.as_int(state.get("ExitCode"))
        why = f", last {_exit(code, state, c)}" if code is not None else ""
        return f"restarting ({restarts} restarts){why}" if restarts is not None else f"restarting{why}"
    if status in ("exited", "dead"):
        code = words.as_int(state.get("ExitCode"))
        if code is None:
            return f"{status}" + (f": {words.first_line(state['Error'])}" if state.get("Error") else "")
        text = _exit(code, state, c)
        times = (restarts or 0) + 1  # each restart followed an exit; this one has not been restarted
        if times > 1:
            span = words.span(c.get("created"), state.get("FinishedAt"))
            text += f" {times} times" + (f" in {span}" if span else "")
        if state.get("Error"):
            text += f": {words.first_line(state['Error'])}"
        elif code not in SIGNALS and code not in NOT_RUNNABLE and not state.get("OOMKilled"):
            line = words.last_line(c)
            if line:
                text += f": {line}"
        return text
    if str(health.get("Status") or c.get("health")) == "unhealthy":
        return _health(health, state, restarts)
    if str(health.get("Status") or c.get("health")) == "starting":
        return "health check has not passed yet (starting)"
    if status == "paused":
        return "paused"
    if status == "running" and restarts:
        return f"running again after {restarts} restarts"
    return None


def _exit(code: int, state: dict, c: dict) -> str:
    text = f"exited with code {code}"
    if state.get("OOMKilled"):
        limit = words.size(words.as_int(c.get("memory")))
        return f"{text} (killed: out of memory{', limit ' + limit if limit else ''})"
    if code == 137 and words.size(words.as_int(c.get("memory"))):  # SIGKILL under a memory limit, the engine silent on OOM
        return f"{text} ({SIGNALS[code]}, memory limit {words.size(words.as_int(c.get('memory')))}: likely out of memory)"
    if code in SIGNALS:
        return f"{text} ({SIGNALS[code]})"
    if code in NOT_RUNNABLE:
        return f"{text} ({NOT_RUNNABLE[code]})"
    return text


def _health(health: dict, state: dict, restarts: int | None) -> str:
    log = [p for p in health.get("Log") or [] if isinstance(p, dict)]
    failing = []
    for probe in reversed(log):  # the trailing run of failed probes
        if words.as_int(probe.get("ExitCode")) == 0:
            break
        failing.insert(0, probe)
    streak = words.as_int(health.get("FailingStreak"))
    text = "health check failing"
    duration = words.seconds_between(failing[0].get("Start"), failing[-1].get("End")) if failing else None
    if duration is not None:
        if streak and streak > len(failing) and len(failing) > 1:  # older probes fell out of the log (docker keeps 5)
            starts = words.seconds_between(failing[0].get("Start"), failing[-1].get("Start"))
            if starts is not None:
                duration += starts / (len(failing) - 1) * (streak - len(failing))
            text += f" for about {words.duration(duration)}"
        else:
            text += f" for {words.duration(duration)}"
    if streak:
        text += f" ({streak} probe{'s' if streak != 1 else ''} in a row)"
    probe = failing[-1] if failing else (log[-1] if log else None)
    if probe is not None:
        output = words.first_line(probe.get("Output"))
        code = words.as_int(probe.get("ExitCode"))
        text += f": {output}" if output else (f": the check exited with code {code} and printed nothing" if code is not None else "")
    if restarts:
        text += f"; {restarts} restarts"
    return text


def _waiting(c: dict, report: dict) -> str | None:
    """A created container whose compose dependencies are not (yet) what it waits for."""
    deps = _depends_on(c.get("depends_on"))
    if not deps:
        return None
    others = {str(o.get("name")): o for o in report.get("containers") or [] if isinstance(o, dict)}
    wanted = {"service_healthy": lambda o: o.get("health") == "healthy",
              "service_completed_successfully": lambda o: o.get("state") == "exited"
              and words.as_int((o.get("inspect_state") or {}).get("ExitCode")) in (0, None),
              "service_started": lambda o: o.get("state") == "running"}  # fmt: skip
    blocking = [(name, cond) for name, cond in deps if name not in others or not wanted.get(cond, wanted["service_started"])(others[name])]
    name, cond = (blocking or deps)[0]
    return f"waiting for {name} (depends_on: {cond})"


def _depends_on(value) -> list[tuple[str, str]]:
    """compose's label "stt:service_healthy:false,redis:service_started:false" (or a list or dict)."""
    if isinstance(value, dict):
        return [(str(k), str((v or {}).get("condition", "service_started")) if isinstance(v, dict) else "service_started")
                for k, v in value.items()]  # fmt: skip
    items = value if isinstance(value, list) else str(value or "").split(",")
    found = []
    for item in items:
        parts = str(item).strip().split(":")
        if parts[0]:
            found.append((parts[0], parts[1] if len(parts) > 1 and parts[1] else "service_started"))
    return found


def _in_words(c) -> str:
    if not isinstance(c, dict):
        return "not running healthy (the report does not say why)"
    state, health = c.get("state") or "state unknown", c.get("health")
    if health and health not in ("none", "healthy"):
        return f"{state}, health {health}"
    return f"{state}" if state != "running" else "running, but not healthy"


# ---- the report's own error ---------------------------------------------------------------


def _host(error: str, report: dict) -> str:
    low = error.lower()
    if low.startswith("compose pull failed") or "pull access denied" in low or "error pulling" in low:
        for needle, reason in PULL_REASONS:
            if needle in low:
                return f"image pull failed: {reason}"
        return f"image pull failed: {words.last_meaningful(error.split(':', 1)[-1])}"
    if low.startswith("docker login"):
        reason = next((r for n, r in PULL_REASONS if n in low), None)
        return f"registry login failed: {reason or words.last_meaningful(error)}"
    dep = re.search(r"dependency failed to start: container (\S+) (is unhealthy|exited \((\d+)\))", error)
    if dep:
        name = _service(dep.group(1), report)
        if dep.group(3) is not None:
            return f"waiting for {name} (depends_on: service_completed_successfully), which exited with code {dep.group(3)}"
        return f"waiting for {name} (depends_on: service_healthy), which is unhealthy"
    v1 = re.search(r'for (\S+)\s+Container "?\w+"? is unhealthy', error)
    if v1:
        return f"waiting for a dependency of {v1.group(1)} (depends_on: service_healthy), which is unhealthy"
    if low.startswith("compose up"):
        return f"compose up failed: {words.last_meaningful(error.split(':', 1)[-1])}"
    return words.first_line(error)


def _service(container_name: str, report: dict) -> str:
    """damso-prod-agent-stt-1 → stt (compose v2 names containers PROJECT-SERVICE-N)."""
    name = re.sub(r"[-_]\d+$", "", container_name)
    env, role = report.get("env"), report.get("role")
    if env and role:
        name = re.sub(rf"^damso-{re.escape(str(env))}-{re.escape(str(role))}(-\d+)?[-_]", "", name)
    return name
