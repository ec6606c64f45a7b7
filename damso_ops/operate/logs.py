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
    reports = store.reports()
    found = []
    for host in where.hosts[role]:
        instance = host["instance_id"]
        report = reports.get(instance)
        if report is None:
            if len(where.hosts[role]) == 1:
                raise DamsoError(f"{role} ({instance}) has not reported yet, so there are no logs to show.")
            continue
        containers = report.get("containers", [])
        names = sorted(c.get("name", "?") for c in containers)
        if service and service not in names:
            raise UsageError(f"{role} ({instance}) has no container {service!r} (containers: {', '.join(names) or 'none'}).")
        found += [
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
    if not found and not service:
        raise DamsoError(f"No instance of {role} has reported yet, so there are no logs to show.")
    return found
