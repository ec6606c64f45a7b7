"""Releases: immutable sets of rendered files in S3, a manifest of sums, a pointer written last.

Where they live in S3 is the store's business (deploy/store.py).
"""

from __future__ import annotations

import difflib
import getpass
import hashlib
import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone

from damso_ops.deploy.store import Layout, ReleaseStore


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Release:
    id: str
    env: str
    content: str  # hash of everything that decides what runs
    files: Mapping[str, Mapping[str, bytes]]  # role → name → bytes
    manifest: Mapping

    def objects(self) -> dict[str, bytes]:
        """S3 key → body for every artifact (not the manifest)."""
        keys = Layout(self.env)
        return {keys.file(self.id, role, name): body for role, fs in self.files.items() for name, body in fs.items()}


def make(
    env: str,
    files: Mapping[str, Mapping[str, str]],
    images: Mapping[str, Mapping],
    registry: str,
    build_id: str | None,
    settings: Mapping[str, Mapping] | None = None,
    now: datetime | None = None,
) -> Release:
    """A release whose id ends in a hash of its content: same content, same hash."""
    now = now or datetime.now(timezone.utc)
    encoded = {role: {n: c.encode() for n, c in sorted(fs.items())} for role, fs in sorted(files.items())}
    sums = {role: {n: sha256(b) for n, b in fs.items()} for role, fs in encoded.items()}
    settings = {role: dict(v) for role, v in (settings or {}).items()}
    content = sha256(json.dumps({"roles": sums, "registry": registry, "settings": settings}, sort_keys=True).encode())
    release_id = f"{now.strftime('%Y%m%dT%H%M%SZ')}-{content[:10]}"
    manifest = {
        "release": release_id,
        "env": env,
        "content": content,
        "created": now.isoformat(timespec="seconds"),
        "by": f"{user()}@{socket.gethostname()}",
        "build": build_id,
        "registry": registry,
        "images": dict(images),
        "roles": sums,
        "settings": settings,  # per role, read by the hosts: {"health_timeout": seconds}
    }
    return Release(release_id, env, content, encoded, manifest)


def user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@dataclass
class UploadStats:
    put: int = 0
    skipped: int = 0
    keys: list[str] = field(default_factory=list)


def upload(store: ReleaseStore, release: Release) -> UploadStats:
    """Upload what is not there yet, the manifest after the files. The pointer is separate."""
    stats = UploadStats()
    body = json.dumps(release.manifest, indent=2, sort_keys=True).encode()
    for key, data in [*sorted(release.objects().items()), (store.keys.manifest(release.id), body)]:
        digest = sha256(data)
        if store.has(key, digest):
            stats.skipped += 1
            continue
        store.write(key, data, sha256=digest)
        stats.put += 1
        stats.keys.append(key)
    return stats


def all_healthy(reports: Mapping[str, Mapping], release: str) -> bool:
    """Every instance's report says it runs `release`, healthy."""
    return all(r.get("status") == "healthy" and r.get("running") == release for r in reports.values())


def diff(store: ReleaseStore, current: dict | None, release: Release) -> dict[str, str]:
    """role/file → unified diff of the rendered files against the current release."""
    old_manifest = (store.manifest(current["release"]) if current else None) or {}
    result = {}
    for role, files in sorted(release.files.items()):
        for name, body in sorted(files.items()):
            old_sum = old_manifest.get("roles", {}).get(role, {}).get(name)
            if old_sum == sha256(body):
                continue
            old = store.file(current["release"], role, name) if old_sum else ""
            lines = difflib.unified_diff(old.splitlines(True), body.decode().splitlines(True),
                                         f"current/{role}/{name}", f"new/{role}/{name}")
            result[f"{role}/{name}"] = "".join(lines)
    return result


UNFINISHED_AGE = 3600  # seconds: an upload younger than this may still be running


def prune(store: ReleaseStore, now: datetime | None = None, min_age: float = UNFINISHED_AGE) -> list[str]:
    """Remove every release prefix with no manifest (a failed or interrupted upload, which
    nothing can point at) whose newest object is older than min_age; return their ids."""
    now = now or datetime.now(timezone.utc)
    pointed = {(store.current() or {}).get("release"), (store.rollout() or {}).get("release")}
    removed = []
    for release, written in sorted(store.unfinished_releases().items()):
        if release in pointed or (now - written).total_seconds() < min_age:
            continue
        store.remove_prefix(store.keys.release_prefix(release) + "/")
        removed.append(release)
    return removed
