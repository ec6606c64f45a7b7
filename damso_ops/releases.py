"""Releases: immutable sets of rendered files in S3, a manifest of sums, a pointer written last.

Layout in the artifact bucket:
  <env>/releases/<id>/manifest.json        roles → file → sha256, images, who, when
  <env>/releases/<id>/<role>/<file>
  <env>/current                            {"release": id, "content": hash}  (written last)
  <env>/reports/<instance-id>.json         written by each host's reconcile unit
"""

from __future__ import annotations

import getpass
import hashlib
import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone


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
        prefix = f"{self.env}/releases/{self.id}"
        return {f"{prefix}/{role}/{name}": body for role, fs in self.files.items() for name, body in fs.items()}

    @property
    def manifest_key(self) -> str:
        return f"{self.env}/releases/{self.id}/manifest.json"


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
        "by": f"{_user()}@{socket.gethostname()}",
        "build": build_id,
        "registry": registry,
        "images": dict(images),
        "roles": sums,
        "settings": settings,  # per role, read by the hosts: {"health_timeout": seconds}
    }
    return Release(release_id, env, content, encoded, manifest)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@dataclass
class UploadStats:
    put: int = 0
    skipped: int = 0
    keys: list[str] = field(default_factory=list)


def current(s3, bucket: str, env: str) -> dict | None:
    try:
        return json.loads(s3.get_object(Bucket=bucket, Key=f"{env}/current")["Body"].read())
    except s3.exceptions.NoSuchKey:
        return None


def _has(s3, bucket: str, key: str, digest: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError:
        return False
    return head.get("Metadata", {}).get("sha256") == digest


def upload(s3, bucket: str, release: Release) -> UploadStats:
    """Upload what is not there yet, the manifest after the files. The pointer is separate."""
    stats = UploadStats()
    body = json.dumps(release.manifest, indent=2, sort_keys=True).encode()
    for key, data in [*sorted(release.objects().items()), (release.manifest_key, body)]:
        digest = sha256(data)
        if _has(s3, bucket, key, digest):
            stats.skipped += 1
            continue
        s3.put_object(Bucket=bucket, Key=key, Body=data, Metadata={"sha256": digest})
        stats.put += 1
        stats.keys.append(key)
    return stats


def point(s3, bucket: str, release: Release) -> None:
    """Make release current: the last write of a deploy."""
    point_to(s3, bucket, release.env, release.id, release.content)


def point_to(s3, bucket: str, env: str, release_id: str, content: str) -> None:
    """Write the pointer: a deploy or a rollback. `content` is the release's own content hash,
    so a later deploy of different content sees a change and re-points."""
    body = json.dumps({"release": release_id, "content": content}).encode()
    s3.put_object(Bucket=bucket, Key=f"{env}/current", Body=body, ContentType="application/json")


def ids(s3, bucket: str, env: str) -> list[str]:
    """Every release id of env that has a prefix in the bucket, oldest first (ids start with their time)."""
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{env}/releases/", Delimiter="/"):
        for p in page.get("CommonPrefixes", []):
            found.append(p["Prefix"][len(f"{env}/releases/"):].rstrip("/"))
    return sorted(found)


def load_manifest(s3, bucket: str, env: str, release_id: str) -> dict | None:
    """A release's manifest.json; None when it is missing (the manifest is uploaded after the files)."""
    try:
        return json.loads(s3.get_object(Bucket=bucket, Key=f"{env}/releases/{release_id}/manifest.json")["Body"].read())
    except (s3.exceptions.NoSuchKey, ValueError):
        return None


def all_healthy(reports: Mapping[str, Mapping], release: str) -> bool:
    """Every instance's report says it runs `release`, healthy."""
    return all(r.get("status") == "healthy" and r.get("running") == release for r in reports.values())


def reports(s3, bucket: str, env: str) -> dict[str, dict]:
    """instance id → its latest report."""
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{env}/reports/"):
        for obj in page.get("Contents", []):
            try:
                data = json.loads(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            except (ValueError, s3.exceptions.NoSuchKey):
                continue
            found[obj["Key"].rsplit("/", 1)[-1].removesuffix(".json")] = data
    return found


def diff(s3, bucket: str, current: dict | None, release: Release) -> dict[str, str]:
    """role/file → unified diff of the rendered files against the current release."""
    import difflib

    old_manifest = {}
    if current:
        key = f"{release.env}/releases/{current['release']}/manifest.json"
        old_manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    result = {}
    for role, files in sorted(release.files.items()):
        for name, body in sorted(files.items()):
            old_sum = old_manifest.get("roles", {}).get(role, {}).get(name)
            if old_sum == sha256(body):
                continue
            old = ""
            if old_sum:
                key = f"{release.env}/releases/{current['release']}/{role}/{name}"
                old = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
            lines = difflib.unified_diff(old.splitlines(True), body.decode().splitlines(True),
                                         f"current/{role}/{name}", f"new/{role}/{name}")
            result[f"{role}/{name}"] = "".join(lines)
    return result
