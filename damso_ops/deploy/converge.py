"""After the pointer moves: hosts converge (on their own, or here for the sandbox) and
damso waits until every instance reports the release healthy."""

from __future__ import annotations

import sys
from collections.abc import Callable

from damso_ops.deploy import render
from damso_ops.deploy.stackops import parallel
from damso_ops.deploy.store import ReleaseStore
from damso_ops.deploy.target import Target
from damso_ops.errors import DamsoError
from damso_ops.runner import Command, run
from damso_ops.timing import wait_for

Event = Callable[[str, str], None]  # (phase, message)
BAD = ("unhealthy", "rejected", "failed")


def reconcile_command(target: Target, role: str, instance: str, bucket: str) -> Command:
    """Run a host's reconcile unit on this machine (the sandbox's instances run nothing)."""
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
    return Command((sys.executable, str(path)), cwd=workdir, env=env)


def converge_locally(target: Target, hosts: dict[str, str], bucket: str, on_event: Event, jobs: int) -> None:
    def one(item):
        role, instance = item
        on_event("converge", f"{role} ({instance}) on the local Docker engine")
        run(reconcile_command(target, role, instance, bucket), check=False)

    parallel(one, sorted(hosts.items()), jobs)


def health_timeout(target: Target, roles, timeout: float | None) -> float:
    """--timeout, else the slowest role's health timeout plus a minute of reporting."""
    return timeout or max((target.env.roles[r].health_timeout for r in roles if r in target.env.roles), default=0) + 60


def wait_healthy(store: ReleaseStore, release: str, hosts: dict[str, str], timeout: float, on_event: Event,
                 poll: float = 2.0) -> dict[str, dict]:  # fmt: skip
    """Poll the hosts' reports until each runs `release` healthy; raise naming what is not."""
    wanted = {instance: role for role, instance in hosts.items()}
    last: dict[str, str] = {}
    state: dict[str, dict] = {}

    def probe() -> dict[str, dict] | None:
        found = store.reports()
        state.clear()
        state.update({i: found.get(i, {}) for i in wanted})
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
        lines = []
        for instance, report in sorted(reports.items()):
            status = report.get("status", "no report")
            if report.get("release") != release:
                status = f"still on {report.get('release') or 'nothing'}"
            lines.append(f"{roles[instance]} ({instance}): {status}{': ' + report['error'] if report.get('error') else ''}")
            for c in report.get("containers", []):
                if not c.get("ok"):
                    lines.append(f"  {c['name']}: {c['state']}, health {c['health']}")
                    lines += [f"    | {line}" for line in c.get("logs", [])[-10:]]
        what = "did not report healthy in time" if timed_out else "is not healthy"
        super().__init__(f"Release {release} {what}.", details="\n".join(lines))
        self.reports = reports


def converge_and_wait(target: Target, store: ReleaseStore, release: str, hosts: dict[str, str], *, converge_local: bool,
                      wait: bool, timeout: float | None, on_event: Event, jobs: int) -> dict[str, dict]:  # fmt: skip
    """The last steps of a deploy and a rollback: local convergence (sandbox) and the health wait."""
    if converge_local:
        converge_locally(target, hosts, store.bucket, on_event, jobs)
    if not wait:
        return {}
    limit = health_timeout(target, hosts, timeout)
    return wait_healthy(store, release, hosts, limit, on_event)
