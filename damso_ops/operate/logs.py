"""damso logs: the last log lines each instance of a role put in its latest report."""

from __future__ import annotations

from damso_ops.deploy.store import ReleaseStore
from damso_ops.errors import DamsoError, UsageError
from damso_ops.operate.deployed import Deployed


def logs(store: ReleaseStore, where: Deployed, role: str, service: str | None = None, lines: int = 50) -> list[dict]:
    """The last log lines each instance of `role` put in its report, per container."""
    if role not in where.hosts:
        known = ", ".join(sorted(where.hosts)) or "none"
        raise UsageError(f"{where.env} has no deployed role {role!r} (roles: {known}).")
    instance = where.hosts[role]["instance_id"]
    report = store.reports().get(instance)
    if report is None:
        raise DamsoError(f"{role} ({instance}) has not reported yet, so there are no logs to show.")
    containers = report.get("containers", [])
    names = sorted(c.get("name", "?") for c in containers)
    if service and service not in names:
        raise UsageError(f"{role} ({instance}) has no container {service!r} (containers: {', '.join(names) or 'none'}).")
    return [
        {
            "role": role,
            "instance_id": instance,
            "container": c.get("name"),
            "time": report.get("time"),
            "release": report.get("running"),
            "lines": list(c.get("logs", []))[-lines:] if lines else [],
        }
        for c in containers
        if not service or c.get("name") == service
    ]
