"""After the pointer moves: hosts converge (on their own, or here for the sandbox) and
damso waits until every instance reports the release healthy."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime, timezone

from damso_ops.concurrency import parallel
from damso_ops.deploy import releases, render
from damso_ops.deploy.store import ReleaseStore
from damso_ops.deploy.target import Target
from damso_ops.errors import DamsoError
from damso_ops.operate import diagnose
from damso_ops.runner import Command, run
from damso_ops.timing import wait_for

Event = Callable[[str, str], None]  # (phase, message)
BAD = ("unhealthy", "rejected", "failed")


def reconcile_command(target: Target, role: str, instance: str, bucket: str, index: int | None = None) -> Command:
    """Run a host's reconcile unit on this machine (the sandbox's instances run nothing).
    index: the instance's number when its role has several; they share this machine's
    engine, so each gets its own compose project (and DAMSO_INSTANCE_INDEX for ports)."""
    workdir = target.state_dir / "sandbox" / "hosts" / instance
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "reconcile.py"
    path.write_text(render.reconcile_source())
    env = {
        **target.aws.process_env(),
        "DAMSO_ENV": target.env_name,
        "DAMSO_ROLE": role,
        "DAMSO_BUCKET": bucket,
        "DAMSO_INSTANCE_ID": instance,
        "DAMSO_WORKDIR": str(workdir),
        "DAMSO_NODE_IP": "127.0.0.1",  # no instance metadata here
        "DOCKER_CONFIG": str(workdir / "docker"),
    }
    if index is not None:
        env.update(DAMSO_COMPOSE_PROJECT=f"damso-{target.env_name}-{role}-{index}", DAMSO_INSTANCE_INDEX=str(index))
    return Command((sys.executable, str(path)), cwd=workdir, env=env)


def converge_locally(target: Target, hosts: dict[str, str], bucket: str, on_event: Event, jobs: int,
                     index: int | None = None) -> None:  # fmt: skip
    """Run the reconcile unit of each (role → instance) here, once, as the host's service does when its pointer moves."""
    def one(item):
        role, instance = item
        on_event("converge", f"{role} ({instance}) on the local Docker engine")
        run(reconcile_command(target, role, instance, bucket, index), check=False)

    parallel(one, sorted(hosts.items()), jobs)


def health_timeout(target: Target, roles, timeout: float | None) -> float:
    """--timeout, else the slowest role's health timeout plus a minute of reporting."""
    return timeout or max((target.env.roles[r].health_timeout for r in roles if r in target.env.roles), default=0) + 60


def wait_healthy(store: ReleaseStore, release: str, wanted: dict[str, str], timeout: float, on_event: Event,
                 poll: float = 2.0, since: str | None = None) -> dict[str, dict]:  # fmt: skip
    """Poll the reports of `wanted` (instance → role) until each runs `release` healthy; raise
    naming what is not. since: reports older than this (ISO time) are not looked at yet."""
    last: dict[str, str] = {}
    state: dict[str, dict] = {}

    def fresh(report: dict) -> dict:
        return report if not since or str(report.get("time", "")) >= since[:19] else {}

    def probe() -> dict[str, dict] | None:
        found = store.reports()
        state.clear()
        state.update({i: fresh(found.get(i, {})) for i in wanted})
        for instance, report in state.items():
            text = f"{wanted[instance]} ({instance}): {report.get('status', 'no report yet')} {report.get('release', '')}".strip()
            if last.get(instance) != text:
                on_event("health", text)
                last[instance] = text
        final = {i: r for i, r in state.items() if r.get("release") == release}
        if len(final) == len(wanted) and all(r.get("status") == "healthy" for r in final.values()):
            return dict(state)
        if any(r.get("status") in BAD for r in final.values()):
            raise DeployUnhealthy(release, dict(state), wanted, timed_out=False)
        return None

    try:
        return wait_for(probe, timeout=timeout, interval=poll, what=f"release {release} healthy")
    except TimeoutError:
        raise DeployUnhealthy(release, dict(state), wanted, timed_out=True) from None


class DeployUnhealthy(DamsoError):
    def __init__(self, release: str, reports: dict[str, dict], roles: dict[str, str], timed_out: bool):
        lines, failing = [], []
        for instance, report in sorted(reports.items()):
            status = report.get("status", "no report")
            if report.get("release") != release:
                status = f"still on {report.get('release') or 'nothing'}"
            lines.append(f"{roles[instance]} ({instance}): {status}{': ' + report['error'] if report.get('error') else ''}")
            why = diagnose.host_diagnosis(report.get("error"), report) if report.get("release") == release else None
            if why:
                if why != report.get("error"):
                    lines.append(f"  {why}")
                failing.append({"role": roles[instance], "instance_id": instance, "container": None, "state": None,
                                "health": None, "diagnosis": why, "last_logs": []})  # fmt: skip
            for c in report.get("containers", []):
                if not c.get("ok"):
                    found = diagnose.explain(c, report)
                    lines.append(f"  {c.get('name')}: {c.get('state')}, health {c.get('health')}")
                    lines.append(f"    {found['diagnosis']}")
                    lines += [f"    | {line}" for line in found["last_logs"]]
                    failing.append({"role": roles[instance], "instance_id": instance, "container": c.get("name"),
                                    "state": c.get("state"), "health": c.get("health"), **found})  # fmt: skip
        what = "did not report healthy in time" if timed_out else "is not healthy"
        super().__init__(f"Release {release} {what}.", details="\n".join(lines))
        self.reports = reports
        self.failing = failing  # per failing container (or host): diagnosis and last log lines
        self.data = {"failing": failing}


def converge_and_wait(target: Target, store: ReleaseStore, release: str, hosts: dict[str, list[str]], *,
                      converge_local: bool, wait: bool, timeout: float | None, on_event: Event) -> dict[str, dict]:  # fmt: skip
    """Every host at once: local convergence (sandbox), then the health wait. For a settled
    deploy and a rollback; a rollout moves wave by wave instead (deploy/rollout.py)."""
    if converge_local:
        for role, instances in sorted(hosts.items()):
            for n, instance in enumerate(instances):
                converge_locally(target, {role: instance}, store.bucket, on_event, 1, index=n if len(instances) > 1 else None)
    if not wait:
        return {}
    wanted = {i: role for role, instances in hosts.items() for i in instances}
    return wait_healthy(store, release, wanted, health_timeout(target, hosts, timeout), on_event)


def settled_health(target: Target, store: ReleaseStore, release: str, hosts: dict[str, list[str]], *,
                   converge_local: bool, wait: bool, timeout: float | None, on_event: Event) -> dict:  # fmt: skip
    """Nothing to move: when every host already reports the release healthy (and, on AWS, recently),
    there is nothing to wait for either; otherwise converge (sandbox) and wait as usual."""
    found = healthy_now(target, store, release, hosts)
    if found is not None:
        on_event("health", f"every instance already reports {release} healthy; not waiting")
        return found
    return converge_and_wait(target, store, release, hosts, converge_local=converge_local, wait=wait,
                             timeout=timeout, on_event=on_event)  # fmt: skip


FRESH = 300  # seconds: hosts report every minute


def healthy_now(target: Target, store: ReleaseStore, release: str, hosts: dict[str, list[str]]) -> dict | None:
    """Every host's report when each runs `release` healthy (and, on AWS, reported recently); else None."""
    reports = store.reports()
    found = {i: reports.get(i, {}) for instances in hosts.values() for i in instances}
    fresh = target.aws.emulated or all(_age(r) < FRESH for r in found.values())
    return found if found and fresh and releases.all_healthy(found, release) else None


def _age(report: dict) -> float:
    try:
        return (datetime.now(timezone.utc) - datetime.fromisoformat(report["time"])).total_seconds()
    except (KeyError, TypeError, ValueError):
        return float("inf")
