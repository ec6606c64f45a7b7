"""damso status: every instance of an environment, the release it runs against the current
one, its containers' commits and health, and the problems (drift, staleness, failures)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

from damso_ops.deploy import lock
from damso_ops.deploy.store import ReleaseStore
from damso_ops.operate import diagnose
from damso_ops.operate.deployed import Deployed

STALE_AFTER = 900  # seconds: hosts report every minute (their damso-reconcile service), so 15 min means the unit is not running


def parse_time(text: str | None) -> datetime | None:
    try:
        value = datetime.fromisoformat(str(text))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _compose_images(text: str) -> set[str]:
    return {m.group(1) for m in re.finditer(r"^\s*image:\s*[\"']?([^\"'\s#]+)", text, re.M)}


@dataclass
class Status:
    env: str
    current: str | None
    current_created: str | None
    instances: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    rollout: dict | None = None  # the last rollout: release, state (moving, interrupted, done, halted, rolled_back), wave
    lock: dict | None = None  # who holds the environment's lock, since when, holder_state (alive, gone, unknown)

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
            "rollout": self.rollout,
            "lock": self.lock,
        }


def lock_problem(env: str, info: dict, state: str) -> str:
    """A held lock blocks every deploy, rollback and destroy: say by whom, and what to do."""
    held = f"{env} is locked: {lock.describe(info)}"
    if state == "alive":
        return f"{held}, still running on this machine; deploys wait for it"
    if state == "gone":
        return f"{held}, but that process is gone (a stale lock): run 'damso unlock {env}'"
    return f"{held}, on another machine; if that process is gone, run 'damso unlock {env}'"


def status(store: ReleaseStore, ec2, where: Deployed, now: datetime | None = None, stale_after: float | None = STALE_AFTER,
           lock_info: dict | None = None, hostname: str | None = None) -> Status:  # fmt: skip
    """Every instance of the environment: state, addresses, release running vs current,
    containers (digest, commit, health), last report; problems when unhealthy or drifting.
    stale_after None: report age is shown but not judged (the sandbox's hosts run no service).
    lock_info: the environment's lock (lock.read), a problem while held; a rollout still
    `moving` whose deploy holds no live lock is `interrupted`."""
    now = now or datetime.now(timezone.utc)
    env = where.env
    pointer = store.current() or {}
    current = pointer.get("release")
    manifest = store.manifest(current) if current else None
    result = Status(env, current, (manifest or {}).get("created"))
    if not current:
        result.problems.append(f"{env} has no current release")
    elif manifest is None:
        result.problems.append(f"the current release {current} has no manifest")
    holder = None
    if lock_info is not None:
        holder = lock.holder_state(lock_info, hostname)
        result.lock = {**{k: v for k, v in lock_info.items() if k != "token"}, "holder_state": holder}
        result.problems.append(lock_problem(env, lock_info, holder))
    state = store.rollout()
    if state and state.get("state") == "moving" and holder in (None, "gone"):
        state = {**state, "state": "interrupted"}  # no deploy moves it any more
        result.problems.append(f"the rollout of {state['release']} {rollout_text(state)}: "
                               f"'damso deploy {env}' resumes it, 'damso rollback {env}' goes back")  # fmt: skip
    if state:
        result.rollout = {k: state.get(k) for k in ("release", "state", "wave", "waves", "started", "finished", "rolled_back")}
        if state.get("failed"):
            result.rollout["failed"] = {k: state["failed"].get(k) for k in ("wave", "roles", "error")}
        if state.get("state") in ("halted", "rolled_back"):
            result.problems.append(f"the rollout of {state['release']} {rollout_text(state)}")
    manifests = {current: manifest}
    by_image = {info.get("image"): (service, info) for service, info in (manifest or {}).get("images", {}).items()}

    ids = [h["instance_id"] for hosts in where.hosts.values() for h in hosts]
    described = {}
    if ids:
        for page in ec2.get_paginator("describe_instances").paginate(Filters=[{"Name": "instance-id", "Values": ids}]):
            for reservation in page["Reservations"]:
                for inst in reservation["Instances"]:
                    described[inst["InstanceId"]] = inst
    found = store.reports()

    for role in where.missing:
        result.problems.append(f"{role}: not deployed (no stack state)")
        result.instances.append({"role": role, "instance_id": None, "state": "not deployed", "problems": ["not deployed"],
                                 "containers": []})  # fmt: skip
    for role, host in sorted(((role, h) for role, hosts in where.hosts.items() for h in hosts),
                             key=lambda item: (item[0], item[1]["instance_id"])):  # fmt: skip
        instance = host["instance_id"]
        inst = described.get(instance, {})
        report = found.get(instance)
        desired = store.desired(role, instance)
        if desired not in manifests:
            manifests[desired] = store.manifest(desired) if desired else None
        expected = _expected_images(store, desired, role, manifests[desired])
        entry = {
            "role": role,
            "instance_id": instance,
            "state": inst.get("State", {}).get("Name", "missing"),
            "instance_type": inst.get("InstanceType"),
            "private_ip": inst.get("PrivateIpAddress") or host.get("private_ip"),
            "public_ip": inst.get("PublicIpAddress") or host.get("public_ip"),
            "release_running": (report or {}).get("running"),
            "release_current": current,
            "release_desired": desired,
            "rollout": _instance_rollout(state, role, desired),
            "release_reported": (report or {}).get("release"),
            "health": (report or {}).get("status", "no report"),
            "error": (report or {}).get("error"),
            "diagnosis": diagnose.host_diagnosis((report or {}).get("error"), report),
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
            reported = parse_time(report.get("time"))
            if reported:
                entry["report_age_seconds"] = int((now - reported).total_seconds())
                if stale_after is not None and entry["report_age_seconds"] > stale_after:
                    problems.append(f"last report is {entry['report_age_seconds']} s old (more than {int(stale_after)} s): is its reconcile unit running?")
            if desired and report.get("running") != desired:
                problems.append(f"runs {report.get('running') or 'nothing'}, behind current {desired}")
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
                **diagnose.explain(c, report),  # diagnosis, last_logs: why it is not ok (null, [] when ok)
            }
            entry["containers"].append(container)
            if not container["ok"]:
                problems.append(f"container {container['name']}: {container['state']}, health {container['health']}")
            if not container["in_release"]:
                problems.append(f"container {container['name']} runs {image}, which is not in release {desired}")
        result.problems += [f"{role} ({instance}): {p}" for p in problems]
        result.instances.append(entry)
    return result


def rollout_text(state: dict) -> str:
    failed = state.get("failed") or {}
    where = f"halted at wave {failed.get('wave')} ({', '.join(failed.get('roles', []))})"
    if state.get("state") == "rolled_back":
        return f"{where}, rolled back: {', '.join(state.get('rolled_back') or []) or 'nothing'}"
    at = f"wave {state.get('wave')} of {len(state.get('waves', []))}"
    return {"moving": f"is moving ({at})", "interrupted": f"was interrupted at {at} (its deploy is gone)",
            "done": "is done", "halted": where}.get(state.get("state"), str(state.get("state")))  # fmt: skip


def _instance_rollout(state: dict | None, role: str, desired: str | None) -> str:
    """Where this instance stands in the last rollout: moved, waiting, halted, rolled back, or settled."""
    if not state or state.get("state") == "done":
        return "settled"
    if role in (state.get("rolled_back") or []):
        return f"rolled back to {desired}"
    if desired == state.get("release"):
        return "moved" if state.get("state") == "moving" else f"on {desired}; {rollout_text(state)}"
    wave = next((n for n, w in enumerate(state.get("waves", []), 1) if role in w), None)
    if state.get("state") == "interrupted":
        return f"not moved: the rollout was interrupted before wave {wave}"
    return f"waiting for wave {wave}" if state.get("state") == "moving" else rollout_text(state)


def _expected_images(store: ReleaseStore, release: str | None, role: str, manifest: dict | None) -> set[str] | None:
    """Images the role's containers should run in `release`: those its compose.yml names."""
    if not release or not manifest or role not in manifest.get("roles", {}):
        return None
    if "compose.yml" in manifest["roles"][role]:
        text = store.file(release, role, "compose.yml")
        if text:
            return _compose_images(text)
    return {info.get("image") for info in manifest.get("images", {}).values()}


