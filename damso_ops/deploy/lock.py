"""One deploy, rollback or destroy per environment at a time, across machines.

The lock is an object in the environment's prefix of the Terraform state bucket
(it exists before any stack does): `<env>/damso.lock`, holding who (user@host,
pid), which command and since when. It is created with a conditional put
(`If-None-Match: *`), which S3 (and moto 5.x) performs atomically: of two
concurrent puts exactly one succeeds, the other gets 412 PreconditionFailed.

A put whose response was lost (the write done, the connection reset before the
answer) is retried by botocore and the retry gets 412: the lock is then read and
its token compared with ours; ours means we hold it. Release does the same: it
deletes only a lock whose token is ours, and only that version (VersionId), so
a lock taken by someone else in between is never removed.

A killed damso leaves its lock behind: the next one refuses, naming the holder,
until `damso unlock ENV`. Whoever takes the lock next also removes the
Terraform lock files (`*.tflock`, the S3 backend's `use_lockfile`) that a
killed apply left in the environment's prefix: while damso holds its own lock
no other damso apply can be running, so they can only be leftovers (deploy/tflocks.py).

Library code: no printing; progress through on_event(phase, message).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from damso_ops.deploy import tflocks
from damso_ops.deploy.releases import user
from damso_ops.deploy.store import Layout
from damso_ops.errors import DamsoError
from damso_ops.timing import format_duration, wait_for

Event = Callable[[str, str], None]


def _ignore(phase: str, message: str) -> None:
    pass


def key(env: str) -> str:
    return Layout(env).lock


def _now() -> datetime:
    return datetime.now(timezone.utc)


def holder_name() -> str:
    return f"{user()}@{socket.gethostname()}"


@dataclass(frozen=True)
class Lock:
    bucket: str
    env: str
    info: dict  # holder, pid, command, since, token

    @property
    def key(self) -> str:
        return key(self.env)


def describe(info: dict, now: datetime | None = None) -> str:
    """'deploy by alice@laptop (pid 4242) since 2026-01-01T10:00:00+00:00 (3 min ago)'."""
    since = info.get("since", "?")
    ago = ""
    try:
        seconds = ((now or _now()) - datetime.fromisoformat(since)).total_seconds()
        ago = f" ({format_duration(seconds)} ago)"
    except (TypeError, ValueError):
        pass
    return f"{info.get('command', '?')} by {info.get('holder', '?')} (pid {info.get('pid', '?')}) since {since}{ago}"


def _process_started(pid: int) -> float | None:
    """When a process of this machine started (epoch seconds), from /proc; None if unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime "))
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def holder_state(info: dict, hostname: str | None = None) -> str:
    """'alive' (its process runs on this machine), 'gone' (this machine, no such process, or its pid
    now belongs to a process started after the lock was taken) or 'unknown' (another machine)."""
    if not str(info.get("holder", "")).endswith(f"@{hostname or socket.gethostname()}"):
        return "unknown"
    try:
        pid = int(info["pid"])
        os.kill(pid, 0)
    except (KeyError, TypeError, ValueError, ProcessLookupError):
        return "gone"
    except PermissionError:  # another user's process: it exists
        pass
    started, since = _process_started(pid), None
    try:
        since = datetime.fromisoformat(str(info.get("since"))).timestamp()
    except ValueError:
        pass
    if started is not None and since is not None and started > since + 2:  # the pid was recycled
        return "gone"
    return "alive"


class LockHeld(DamsoError):
    """Another deploy/rollback/destroy holds the environment's lock."""

    exit_code = 3

    def __init__(self, env: str, info: dict, waited: float):
        waited_text = f" after waiting {waited:.0f} s" if waited else ""
        super().__init__(
            f"{env} is locked{waited_text}: {describe(info)}.",
            hint=f"Wait for it (--lock-timeout SECONDS), or if that process is gone, run 'damso unlock {env}'.",
        )
        self.info = info


def read(s3, bucket: str, env: str) -> dict | None:
    """The lock's content, or None when the environment is not locked."""
    return _read_version(s3, bucket, env)[0]


def _read_version(s3, bucket: str, env: str) -> tuple[dict | None, str | None]:
    """The lock's content and its S3 version id (None when the bucket keeps no versions)."""
    from botocore.exceptions import ClientError

    try:
        response = s3.get_object(Bucket=bucket, Key=key(env))
        body = response["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
            return None, None
        raise
    version = response.get("VersionId")
    version = None if version in (None, "null") else version
    try:
        return json.loads(body), version
    except ValueError:
        return {"holder": "unknown (unreadable lock object)"}, version


def ours(found: dict | None, info: dict) -> bool:
    """Whether a lock read back is the one we wrote (a conditional write whose answer was lost)."""
    return bool(found) and found.get("token") == info["token"]


def _conflict(exc) -> bool:
    err = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return err.get("Code") in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412)


def acquire(
    s3,
    bucket: str,
    env: str,
    command: str,
    *,
    timeout: float = 0,
    poll: float = 2.0,
    on_event: Event = _ignore,
) -> Lock:
    """Take the environment's lock, waiting up to timeout seconds; raise LockHeld otherwise."""
    from botocore.exceptions import ClientError

    info = {
        "env": env,
        "holder": holder_name(),
        "pid": os.getpid(),
        "command": command,
        "since": _now().isoformat(timespec="seconds"),
        "token": uuid.uuid4().hex,
    }
    body = json.dumps(info, indent=2, sort_keys=True).encode()
    started = time.monotonic()
    seen: dict = {}

    def try_put() -> bool | None:
        for _ in range(10):  # a lock released between our put and our read: try again at once
            try:
                s3.put_object(Bucket=bucket, Key=key(env), Body=body, IfNoneMatch="*", ContentType="application/json")
                return True
            except ClientError as exc:
                if not _conflict(exc):
                    raise
            seen["other"] = read(s3, bucket, env)
            if ours(seen["other"], info):  # our own earlier attempt was written, its answer lost
                return True
            if seen["other"] is not None:
                break
        else:
            raise DamsoError(f"Could not take the lock of {env} (s3://{bucket}/{key(env)}): it keeps changing.")
        if timeout and not seen.get("announced"):
            on_event("lock", f"waiting for {describe(seen['other'])} (up to {timeout:.0f} s)")
            seen["announced"] = True
        return None

    try:
        wait_for(try_put, timeout=timeout, interval=poll, what=f"the lock of {env}")
    except TimeoutError:
        raise LockHeld(env, seen["other"], time.monotonic() - started if timeout else 0) from None
    on_event("lock", f"{env} locked for {command} by {info['holder']} (pid {info['pid']})")
    removed = tflocks.clear(s3, bucket, env)
    if removed:
        on_event("lock", f"removed Terraform lock files left by an interrupted run: {', '.join(removed)}")
    return Lock(bucket, env, info)


def release(s3, lock: Lock) -> bool:
    """Remove the lock if it is still ours (someone may have run unlock and locked since)."""
    current, version = _read_version(s3, lock.bucket, lock.env)
    if not ours(current, lock.info):
        return False
    # That very version: a retried delete, or one racing an unlock and a new lock, removes nothing else.
    s3.delete_object(Bucket=lock.bucket, Key=lock.key, **({"VersionId": version} if version else {}))
    return True


def force_release(s3, bucket: str, env: str) -> dict | None:
    """`damso unlock`: remove whatever lock there is; return what it said (None: there was none)."""
    info = read(s3, bucket, env)
    if info is not None:
        s3.delete_object(Bucket=bucket, Key=key(env))
    return info


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """A SIGTERM (CI cancelling a job) unwinds like Ctrl-C, so the lock is released."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def held(s3, bucket: str, env: str, command: str, *, timeout: float = 0, on_event: Event = _ignore) -> Iterator[Lock]:
    """with held(...): the lock is released on return, on errors and on Ctrl-C/SIGTERM."""
    lock = acquire(s3, bucket, env, command, timeout=timeout, on_event=on_event)
    try:
        with _sigterm_as_interrupt():
            yield lock
    finally:
        release(s3, lock)
