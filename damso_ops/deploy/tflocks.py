"""Terraform's own lock files (`<env>/<stack>.tfstate.tflock`, the S3 backend's use_lockfile)
left in an environment's prefix by a killed or cut-off run: which of them damso may remove, and
only while it holds its own environment lock (deploy/lock.py), when no other damso applies there."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone

from damso_ops.deploy.store import Layout

PLAN_LOCK_STALE = 900  # a Terraform *plan* lock younger than this may belong to a running `damso plan`


def clear(s3, bucket: str, env: str, now: datetime | None = None) -> list[str]:
    """Delete Terraform lock files in the env's prefix left by a killed run; return their keys.

    Apply and destroy locks can only be leftovers while damso's lock is held. A plan
    lock younger than PLAN_LOCK_STALE may belong to a `damso plan` running right now
    (plans take no damso lock), so it is left alone.
    """
    now = now or datetime.now(timezone.utc)
    removed = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{env}/"):
        for obj in page.get("Contents", []):
            name = obj["Key"]
            if not Layout(env).is_tflock(name):
                continue
            try:
                data = json.loads(s3.get_object(Bucket=bucket, Key=name)["Body"].read())
            except (ValueError, s3.exceptions.NoSuchKey):
                data = {}
            if data.get("Operation") == "OperationTypePlan":
                created = re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", str(data.get("Created", "")))
                age = (now - datetime.fromisoformat(created.group(0)).replace(tzinfo=timezone.utc)).total_seconds() if created else PLAN_LOCK_STALE
                if age < PLAN_LOCK_STALE:
                    continue
            s3.delete_object(Bucket=bucket, Key=name)
            removed.append(name)
    return removed


def remove_own(s3, bucket: str, env: str, stack: str, since: datetime, holder: str) -> dict | None:
    """Terraform's lock of a stack when it can only be this machine's own apply, started at
    `since`, whose write of the lock was done but whose answer was lost (Terraform then waits for
    itself): an apply lock by `holder` (this user@host), created since then. Removed and returned; else None.
    Call only inside damso's environment lock (no other damso applies there)."""
    name = f"{Layout(env).state(stack)}.tflock"
    try:
        data = json.loads(s3.get_object(Bucket=bucket, Key=name)["Body"].read())
    except (ValueError, s3.exceptions.NoSuchKey):
        return None
    created = re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", str(data.get("Created", "")))
    if not created or data.get("Operation") != "OperationTypeApply" or data.get("Who") != holder:
        return None
    if datetime.fromisoformat(created.group(0)).replace(tzinfo=timezone.utc) < since.replace(microsecond=0):
        return None
    s3.delete_object(Bucket=bucket, Key=name)
    return data
