"""Every S3 key of an environment, spelled in one place, and the release store over them.

Artifact bucket (made by the shared stack):
  <env>/current                            {"release": id, "content": hash}: where the environment is heading
  <env>/roles/<role>/current               {"release": id or null}: this role's release during and after a rollout
  <env>/instances/<instance-id>/current    {"release": id}: one instance moved ahead of its role (count > 1)
  <env>/rollout.json                       the last rollout: release, previous per role, waves, state
  <env>/rollouts/<release>.json            each rollout's outcome, for `damso releases`
  <env>/releases/<id>/manifest.json        roles → file → sha256, images, who, when
  <env>/releases/<id>/<role>/<file>
  <env>/reports/<instance-id>.json         written by each host's reconcile unit
  <env>/tasks/<release>/<role>.json        a role's release tasks for a release: assigned (by damso, to
                                           one instance), running, done or failed (by that host)
  <env>/livekit/webhooks.json              webhook URLs added with `damso livekit webhooks add`
State bucket (made by damso before any stack):
  <env>/<stack>.tfstate                    Terraform state, one object per stack
  <env>/<stack>.tfstate.tflock             Terraform's own lock file (use_lockfile)
  <env>/damso.lock                         damso's environment lock

A host runs the release of the most specific pointer that exists: its instance's,
its role's, the environment's. The host's reconcile unit (templates/host/reconcile.py)
is a single stdlib+boto3 file and spells its keys itself;
tests/unit/test_store_contract.py holds both to this layout.
"""

from __future__ import annotations

import json
from datetime import datetime
from dataclasses import dataclass


@dataclass(frozen=True)
class Layout:
    """The key names of one environment (pure: no I/O)."""

    env: str

    @property
    def current(self) -> str:
        return f"{self.env}/current"

    @property
    def releases_prefix(self) -> str:
        return f"{self.env}/releases/"

    def release_prefix(self, release: str) -> str:
        return f"{self.releases_prefix}{release}"

    def manifest(self, release: str) -> str:
        return f"{self.release_prefix(release)}/manifest.json"

    def file(self, release: str, role: str, name: str) -> str:
        return f"{self.release_prefix(release)}/{role}/{name}"

    def role_pointer(self, role: str) -> str:
        return f"{self.env}/roles/{role}/current"

    def instance_pointer(self, instance: str) -> str:
        return f"{self.env}/instances/{instance}/current"

    @property
    def rollout(self) -> str:
        return f"{self.env}/rollout.json"

    def outcome(self, release: str) -> str:
        return f"{self.env}/rollouts/{release}.json"

    @property
    def reports_prefix(self) -> str:
        return f"{self.env}/reports/"

    def report(self, instance: str) -> str:
        return f"{self.reports_prefix}{instance}.json"

    def task_run(self, release: str, role: str) -> str:
        return f"{self.env}/tasks/{release}/{role}.json"

    @property
    def webhooks(self) -> str:
        return f"{self.env}/livekit/webhooks.json"

    # ---- state bucket ----

    def state(self, stack: str) -> str:
        return f"{self.env}/{stack}.tfstate"

    @property
    def lock(self) -> str:
        return f"{self.env}/damso.lock"

    def is_tflock(self, key: str) -> bool:
        """A Terraform lock file directly in the env's prefix (`<env>/<stack>.tfstate.tflock`)."""
        return key.startswith(f"{self.env}/") and key.endswith(".tflock") and "/" not in key[len(self.env) + 1:]


class ReleaseStore:
    """An environment's objects in its artifact bucket: the pointer, releases, reports, webhooks."""

    def __init__(self, s3, bucket: str, env: str):
        self.s3, self.bucket, self.keys = s3, bucket, Layout(env)

    @property
    def env(self) -> str:
        return self.keys.env

    # ---- raw objects ----

    def read(self, key: str) -> bytes | None:
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return None

    def read_json(self, key: str):
        body = self.read(key)
        if body is None:
            return None
        try:
            return json.loads(body)
        except ValueError:
            return None

    def write(self, key: str, body: bytes, sha256: str | None = None) -> None:
        extra = {"Metadata": {"sha256": sha256}} if sha256 else {"ContentType": "application/json"}
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, **extra)

    def has(self, key: str, sha256: str) -> bool:
        """The object exists with this content (its sha256 metadata)."""
        from botocore.exceptions import ClientError

        try:
            head = self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError:
            return False
        return head.get("Metadata", {}).get("sha256") == sha256

    # ---- the pointer ----

    def current(self) -> dict | None:
        return self.read_json(self.keys.current)

    def make_current(self, release: str, content: str) -> None:
        """Write the pointer: the last write of a deploy or a rollback. `content` is the release's own
        content hash, so a later deploy of different content sees a change and re-points."""
        self.write(self.keys.current, json.dumps({"release": release, "content": content}).encode())

    def role_release(self, role: str) -> tuple[bool, str | None]:
        """(whether the role has its own pointer, the release it names: None = nothing yet)."""
        data = self.read_json(self.keys.role_pointer(role))
        return (data is not None, (data or {}).get("release"))

    def set_role_release(self, role: str, release: str | None) -> None:
        self.write(self.keys.role_pointer(role), json.dumps({"release": release}).encode())

    def instance_release(self, instance: str) -> str | None:
        return (self.read_json(self.keys.instance_pointer(instance)) or {}).get("release")

    def set_instance_release(self, instance: str, release: str) -> None:
        self.write(self.keys.instance_pointer(instance), json.dumps({"release": release}).encode())

    def clear_instance_release(self, instance: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=self.keys.instance_pointer(instance))

    def desired(self, role: str, instance: str) -> str | None:
        """The release a host runs, as its reconcile unit decides: the most specific pointer."""
        found = self.instance_release(instance)
        if found:
            return found
        has_role, release = self.role_release(role)
        return release if has_role else (self.current() or {}).get("release")

    # ---- rollouts ----

    def rollout(self) -> dict | None:
        return self.read_json(self.keys.rollout)

    def set_rollout(self, state: dict) -> None:
        self.write(self.keys.rollout, json.dumps(state, indent=2, sort_keys=True).encode())
        if state.get("state") != "moving":
            self.write(self.keys.outcome(state["release"]), json.dumps(state, indent=2, sort_keys=True).encode())

    def outcome(self, release: str) -> dict | None:
        return self.read_json(self.keys.outcome(release))

    # ---- releases ----

    def manifest(self, release: str) -> dict | None:
        """A release's manifest.json; None when missing (it is uploaded after the files)."""
        return self.read_json(self.keys.manifest(release))

    def file(self, release: str, role: str, name: str) -> str:
        return (self.read(self.keys.file(release, role, name)) or b"").decode()

    def role_files(self, release: str, role: str, names) -> dict[str, str]:
        return {n: self.file(release, role, n) for n in names}

    def release_ids(self) -> list[str]:
        """Every release id with a prefix in the bucket, oldest first (ids start with their time)."""
        prefix, found = self.keys.releases_prefix, []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
            found += [p["Prefix"][len(prefix):].rstrip("/") for p in page.get("CommonPrefixes", [])]
        return sorted(found)

    def unfinished_releases(self) -> dict[str, datetime]:
        """Release id → when its newest object was written, for every release prefix without a
        manifest (an upload that failed or was interrupted: nothing points at it). One listing."""
        prefix, newest, finished = self.keys.releases_prefix, {}, set()
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                release, _, rest = obj["Key"][len(prefix):].partition("/")
                if rest == "manifest.json":
                    finished.add(release)
                newest[release] = max(newest.get(release, obj["LastModified"]), obj["LastModified"])
        return {release: when for release, when in newest.items() if release not in finished}

    def remove_prefix(self, prefix: str) -> int:
        """Every object version and delete marker under prefix; how many were removed."""
        removed = 0
        for page in self.s3.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=prefix):
            found = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                     for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]  # fmt: skip
            for start in range(0, len(found), 1000):  # DeleteObjects takes 1000 at most
                self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": found[start:start + 1000], "Quiet": True})
            removed += len(found)
        return removed

    # ---- host reports ----

    def reports(self) -> dict[str, dict]:
        """instance id → its latest report."""
        found = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.keys.reports_prefix):
            for obj in page.get("Contents", []):
                data = self.read_json(obj["Key"])
                if isinstance(data, dict):
                    found[obj["Key"].rsplit("/", 1)[-1].removesuffix(".json")] = data
        return found

    # ---- release tasks ----

    def task_run(self, release: str, role: str) -> dict | None:
        """Where a role's release tasks stand for a release: {"state": assigned|running|done|failed, "instance", ...}."""
        return self.read_json(self.keys.task_run(release, role))

    def assign_tasks(self, release: str, role: str, instance: str) -> bool:
        """Name the one instance that runs the role's tasks for the release, unless they are done.
        A failed run is assigned again: a new deploy retries it. Returns whether it was assigned."""
        found = self.task_run(release, role) or {}
        if found.get("state") == "done":
            return False
        self.write(self.keys.task_run(release, role), json.dumps({"state": "assigned", "instance": instance}).encode())
        return True

    # ---- the LiveKit webhook list ----

    def added_webhooks(self) -> list[str]:
        return list((self.read_json(self.keys.webhooks) or {}).get("urls", []))

    def set_added_webhooks(self, urls: list[str]) -> None:
        self.write(self.keys.webhooks, json.dumps({"urls": urls}, indent=2).encode())
