"""Operate what is deployed: status, release history, rollback, logs.

Library code: never prints; clients are passed in (or made from a deploy.Target
at the edge); progress goes through on_event(phase, message).

Where things are found:
  the role stacks' Terraform outputs   read from their state objects in the state
                                       bucket (<env>/<stack>.tfstate): no terraform init
  instance state and addresses         EC2 describe_instances
  what each host runs                  <env>/reports/<instance-id>.json (reconcile unit)
  what should run                      <env>/current and the release's manifest.json
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from damso_ops import releases, stacks
from damso_ops.errors import DamsoError, UsageError

Event = Callable[[str, str], None]
STALE_AFTER = 900  # seconds: hosts report every minute (systemd timer), so 15 min means the unit is not running


@dataclass(frozen=True)
class Where:
    """An environment's buckets and hosts, from the stacks' state."""

    env: str
    state_bucket: str
    artifact_bucket: str
    hosts: dict[str, dict]  # role → {"instance_id", "private_ip", "public_ip"}
    missing: tuple[str, ...] = ()  # configured roles with no deployed stack

    def instances(self) -> dict[str, str]:
        """role → instance id, the shape deploy.wait_healthy takes."""
        return {role: out["instance_id"] for role, out in self.hosts.items()}


def state_outputs(s3, state_bucket: str, env: str, stack: str) -> dict | None:
    """A stack's outputs as `terraform output` gives them, read from its state object."""
    try:
        body = s3.get_object(Bucket=state_bucket, Key=f"{env}/{stack}.tfstate")["Body"].read()
    except s3.exceptions.NoSuchKey:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        raise DamsoError(f"The Terraform state s3://{state_bucket}/{env}/{stack}.tfstate is not JSON.") from None
    if not data.get("resources") and not data.get("outputs"):
        return None  # destroyed
    return {name: out.get("value") for name, out in data.get("outputs", {}).items()}


def locate(t) -> Where:
    """Find an environment's buckets and hosts (t: deploy.Target)."""
    from damso_ops import deploy

    bucket = deploy.state_bucket(t)
    never = DamsoError(f"{t.env_name} was never deployed (no state bucket {bucket}).", hint=f"Run 'damso deploy {t.env_name}'.")
    if not deploy.bucket_exists(t, bucket):
        raise never
    s3 = t.aws.client("s3")
    shared = state_outputs(s3, bucket, t.env_name, "shared") or {}
    if not shared.get("artifact_bucket"):
        raise never
    hosts, missing = {}, []
    for stack, (role, _) in stacks.roles_by_stack(t.env).items():
        out = state_outputs(s3, bucket, t.env_name, stack)
        if out and out.get("instance_id"):
            hosts[role] = {k: out.get(k) for k in ("instance_id", "private_ip", "public_ip")}
        else:
            missing.append(role)
    return Where(t.env_name, bucket, shared["artifact_bucket"], hosts, tuple(sorted(missing)))


def _parse_time(text: str | None) -> datetime | None:
    try:
        value = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _compose_images(text: str) -> set[str]:
    return {m.group(1) for m in re.finditer(r"^\s*image:\s*[\"']?([^\"'\s#]+)", text, re.M)}


# ---- status -----------------------------------------------------------------------


@dataclass
class Status:
    env: str
    current: str | None
    current_created: str | None
    instances: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return {
            "env": self.env,
            "current": self.current,
            "current_created": self.current_created,
            "ok": self.ok,
            "problems": self.problems,
            "instances": self.instances,
        }


def status(s3, ec2, where: Where, now: datetime | None = None, stale_after: float | None = STALE_AFTER) -> Status:
    """Every instance of the environment: state, addresses, release running vs current,
    containers (digest, commit, health), last report; problems when unhealthy or drifting.
    stale_after None: report age is shown but not judged (the sandbox's hosts run no timer)."""
    now = now or datetime.now(timezone.utc)
    bucket, env = where.artifact_bucket, where.env
    pointer = releases.current(s3, bucket, env) or {}
    current = pointer.get("release")
    manifest = releases.load_manifest(s3, bucket, env, current) if current else None
    result = Status(env, current, (manifest or {}).get("created"))
    if not current:
        result.problems.append(f"{env} has no current release")
    elif manifest is None:
        result.problems.append(f"the current release {current} has no manifest")
    by_image = {info.get("image"): (service, info) for service, info in (manifest or {}).get("images", {}).items()}

    ids = [h["instance_id"] for h in where.hosts.values()]
    described = {}
    if ids:
        for page in ec2.get_paginator("describe_instances").paginate(Filters=[{"Name": "instance-id", "Values": ids}]):
            for reservation in page["Reservations"]:
                for inst in reservation["Instances"]:
                    described[inst["InstanceId"]] = inst
    found = releases.reports(s3, bucket, env)

    for role in where.missing:
        result.problems.append(f"{role}: not deployed (no stack state)")
        result.instances.append({"role": role, "instance_id": None, "state": "not deployed", "problems": ["not deployed"],
                                 "containers": []})  # fmt: skip
    for role, host in sorted(where.hosts.items()):
        instance = host["instance_id"]
        inst = described.get(instance, {})
        report = found.get(instance)
        expected = _expected_images(s3, bucket, env, current, role, manifest)
        entry = {
            "role": role,
            "instance_id": instance,
            "state": inst.get("State", {}).get("Name", "missing"),
            "instance_type": inst.get("InstanceType"),
            "private_ip": inst.get("PrivateIpAddress") or host.get("private_ip"),
            "public_ip": inst.get("PublicIpAddress") or host.get("public_ip"),
            "release_running": (report or {}).get("running"),
            "release_current": current,
            "release_reported": (report or {}).get("release"),
            "health": (report or {}).get("status", "no report"),
            "error": (report or {}).get("error"),
            "last_report": (report or {}).get("time"),
            "report_age_seconds": None,
            "containers": [],
            "problems": [],
        }
        problems = entry["problems"]
        if entry["state"] != "running":
            problems.append(f"instance is {entry['state']}")
        if report is None:
            problems.append("no report from this instance yet")
        else:
            reported = _parse_time(report.get("time"))
            if reported:
                entry["report_age_seconds"] = int((now - reported).total_seconds())
                if stale_after is not None and entry["report_age_seconds"] > stale_after:
                    problems.append(f"last report is {entry['report_age_seconds']} s old (more than {int(stale_after)} s): is its reconcile unit running?")
            if current and report.get("running") != current:
                problems.append(f"runs {report.get('running') or 'nothing'}, behind current {current}")
            if report.get("status") != "healthy":
                why = f": {report['error']}" if report.get("error") else ""
                problems.append(f"{report.get('status', 'unknown')} (release {report.get('release')}){why}")
        for c in (report or {}).get("containers", []):
            image = c.get("image", "")
            service, info = by_image.get(image, (None, {}))
            container = {
                "name": c.get("name"),
                "image": image,
                "digest": image.split("@", 1)[1] if "@" in image else c.get("image_id"),
                "service": service,
                "commit": info.get("commit"),
                "ref": info.get("ref"),
                "repository": info.get("repository"),
                "state": c.get("state"),
                "health": c.get("health"),
                "ok": bool(c.get("ok")),
                "in_release": expected is None or image in expected,
            }
            entry["containers"].append(container)
            if not container["ok"]:
                problems.append(f"container {container['name']}: {container['state']}, health {container['health']}")
            if not container["in_release"]:
                problems.append(f"container {container['name']} runs {image}, which is not in release {current}")
        result.problems += [f"{role} ({instance}): {p}" for p in problems]
        result.instances.append(entry)
    return result


def _expected_images(s3, bucket: str, env: str, release: str | None, role: str, manifest: dict | None) -> set[str] | None:
    """Images the role's containers should run in `release`: those its compose.yml names."""
    if not release or not manifest or role not in manifest.get("roles", {}):
        return None
    if "compose.yml" in manifest["roles"][role]:
        try:
            text = s3.get_object(Bucket=bucket, Key=f"{env}/releases/{release}/{role}/compose.yml")["Body"].read().decode()
            return _compose_images(text)
        except s3.exceptions.NoSuchKey:
            pass
    return {info.get("image") for info in manifest.get("images", {}).values()}


# ---- history ----------------------------------------------------------------------


def history(s3, bucket: str, env: str, limit: int = 20) -> list[dict]:
    """The newest `limit` releases, newest first, each with what changed from the one before."""
    pointer = releases.current(s3, bucket, env) or {}
    manifests = []  # newest first, one more than shown, to compare the oldest shown with
    for release_id in reversed(releases.ids(s3, bucket, env)):
        m = releases.load_manifest(s3, bucket, env, release_id)
        if m is not None:  # a half-uploaded release has no manifest yet
            manifests.append((release_id, m))
        if limit and len(manifests) > limit:
            break
    manifests.reverse()
    entries = []
    for n, (release_id, m) in enumerate(manifests):
        prev = manifests[n - 1][1] if n else None
        entries.append({
            "release": release_id,
            "created": m.get("created"),
            "by": m.get("by"),
            "build": m.get("build"),
            "current": release_id == pointer.get("release"),
            "previous": prev.get("release") if prev else None,
            "images": {s: {k: info.get(k) for k in ("image", "commit", "ref", "repository")}
                       for s, info in sorted(m.get("images", {}).items())},
            "changes": _changes(prev, m) if prev else None,
        })
    if limit and len(entries) > limit:
        entries = entries[-limit:]
    return list(reversed(entries))


def _changes(old: dict, new: dict) -> dict:
    images = []
    old_images, new_images = old.get("images", {}), new.get("images", {})
    for service in sorted(set(old_images) | set(new_images)):
        a, b = old_images.get(service, {}), new_images.get(service, {})
        if a.get("image") != b.get("image") or a.get("commit") != b.get("commit"):
            images.append({"service": service, "from_commit": a.get("commit"), "to_commit": b.get("commit"),
                           "from_image": a.get("image"), "to_image": b.get("image")})  # fmt: skip
    files = {"added": [], "removed": [], "changed": []}
    old_roles, new_roles = old.get("roles", {}), new.get("roles", {})
    for role in sorted(set(old_roles) | set(new_roles)):
        a, b = old_roles.get(role, {}), new_roles.get(role, {})
        for name in sorted(set(a) | set(b)):
            kind = "added" if name not in a else "removed" if name not in b else "changed" if a[name] != b[name] else None
            if kind:
                files[kind].append(f"{role}/{name}")
    settings = sorted(r for r in set(old.get("settings", {})) | set(new.get("settings", {}))
                      if old.get("settings", {}).get(r) != new.get("settings", {}).get(r))  # fmt: skip
    return {"images": images, "files": files, "settings": settings}


# ---- rollback ---------------------------------------------------------------------


@dataclass
class RollbackResult:
    env: str
    release: str
    previous: str | None
    changed: bool
    instances: dict[str, dict] = field(default_factory=dict)
    waited: bool = False

    @property
    def healthy(self) -> bool:
        return releases.all_healthy(self.instances, self.release)

    def to_dict(self) -> dict:
        return {
            "env": self.env,
            "release": self.release,
            "previous": self.previous,
            "changed": self.changed,
            "healthy": self.healthy if self.waited else None,
            "instances": self.instances,
        }


def rollback_target(s3, bucket: str, env: str, to: str | None) -> tuple[dict, dict | None]:
    """(manifest of the release to point at, the current pointer). Default: the release before current."""
    pointer = releases.current(s3, bucket, env)
    ids = releases.ids(s3, bucket, env)
    if to is None:
        if not pointer:
            raise DamsoError(f"{env} has no current release to roll back from.")
        older = (i for i in reversed(ids) if i < pointer["release"] and releases.load_manifest(s3, bucket, env, i))
        to = next(older, None)
        if to is None:
            raise DamsoError(f"{env} has no release before {pointer['release']} to roll back to.",
                             hint=f"See 'damso releases {env}'.")  # fmt: skip
    manifest = releases.load_manifest(s3, bucket, env, to)
    if manifest is None:
        recent = ", ".join(ids[-5:]) or "none"
        raise UsageError(f"{env} has no release {to!r} (latest: {recent}).")
    return manifest, pointer


def rollback(
    t,
    where: Where,
    *,
    to: str | None = None,
    wait: bool = True,
    timeout: float | None = None,
    converge_local: bool = False,
    jobs: int = 4,
    on_event: Event,
) -> RollbackResult:
    """Point <env>/current at an earlier release (no build, no Terraform), then wait for health
    exactly like a deploy. t: deploy.Target."""
    from damso_ops import deploy

    s3 = t.aws.client("s3")
    bucket = where.artifact_bucket
    manifest, pointer = rollback_target(s3, bucket, where.env, to)
    release = manifest["release"] if manifest.get("release") else to
    previous = (pointer or {}).get("release")
    result = RollbackResult(where.env, release, previous, changed=previous != release)
    if result.changed:
        releases.point_to(s3, bucket, where.env, release, manifest.get("content", ""))
        on_event("release", f"{release} is current again (was {previous})")
    else:
        on_event("release", f"{release} is already current; nothing changed")
    hosts = {r: i for r, i in where.instances().items() if r in manifest.get("roles", {})}
    if converge_local:
        deploy.converge_locally(t, hosts, bucket, on_event, jobs)
    if wait:
        roles = [r for r in hosts if r in t.env.roles] or list(t.env.roles)
        limit = timeout or max(t.env.roles[r].health_timeout for r in roles) + 60
        result.waited = True
        result.instances = deploy.wait_healthy(s3, bucket, where.env, release, hosts, limit, on_event)
    return result


# ---- logs -------------------------------------------------------------------------


def logs(s3, where: Where, role: str, service: str | None = None, lines: int = 50) -> list[dict]:
    """The last log lines each instance of `role` put in its report, per container."""
    if role not in where.hosts:
        known = ", ".join(sorted(where.hosts)) or "none"
        raise UsageError(f"{where.env} has no deployed role {role!r} (roles: {known}).")
    instance = where.hosts[role]["instance_id"]
    report = releases.reports(s3, where.artifact_bucket, where.env).get(instance)
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
