"""damso logs from CloudWatch Logs: a role's lines from every instance, merged in time order.

Each role has one log group (deploy/container_logs.py), each instance and container one stream
named <instance id>/<container>. Lines are read with FilterLogEvents (its filter pattern is
--grep), from the streams of the instances and container asked for.

Following polls every POLL seconds and shows lines up to LAG seconds old: the Docker engines
send their lines in batches (every FLUSH seconds, container_logs.py), so a line of one instance
may arrive after a later line of another; waiting LAG lets every instance's lines of that time
arrive, and then they are shown in time order. A line that arrives later still (a host that
could not reach CloudWatch for a while) is shown when it comes, within OVERLAP seconds of the
lines already shown, out of order rather than never.

Known secret values (the role's SSM parameters, and each of their lines) are masked: the lines
go to CloudWatch as the app wrote them, unlike the hosts' reports, which mask on the host.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from damso_ops import redact, secrets
from damso_ops.deploy.container_logs import split_stream
from damso_ops.errors import DamsoError, UsageError

POLL = 2.0  # seconds between reads when following
LAG = 3.0  # seconds a line waits before it is shown, for the other instances' lines of its time
OVERLAP = 60.0  # seconds read again on each poll, for lines that arrive late
MAX_STREAMS = 100  # FilterLogEvents takes at most this many stream names a call
DURATION = re.compile(r"^([0-9]+)(s|m|h|d)$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class LogLine:
    timestamp: int  # milliseconds since the epoch, as Docker stamped the line
    instance_id: str
    container: str
    message: str  # masked

    @property
    def time(self) -> str:
        when = datetime.fromtimestamp(self.timestamp / 1000, timezone.utc)
        return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def to_dict(self, role: str) -> dict:
        return {"time": self.time, "timestamp": self.timestamp, "role": role, "instance_id": self.instance_id,
                "container": self.container, "message": self.message}  # fmt: skip

    def text(self) -> str:
        return f"{self.time} {self.instance_id} {self.container} | {self.message}"


def parse_since(text: str, now: float) -> int:
    """--since: 30s, 10m, 2h, 1d ago, or an ISO time (UTC unless it says otherwise) → epoch ms."""
    value = text.strip()
    match = DURATION.match(value)
    if match:
        return int((now - int(match.group(1)) * UNITS[match.group(2)]) * 1000)
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--since {text!r} is neither a duration (30s, 10m, 2h, 1d) nor an ISO time "
                         "(2026-12-04T21:00:00Z).") from None  # fmt: skip
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    if when.timestamp() > now:
        raise UsageError(f"--since {text!r} is in the future.")
    return int(when.timestamp() * 1000)


def register_secrets(ssm, env: str, role: str) -> None:
    """Mask the role's secret values (and their lines of 8 characters or more, as the host does)."""
    path = secrets.prefix(env, role)
    try:
        for page in ssm.get_paginator("get_parameters_by_path").paginate(Path=path, WithDecryption=True):
            for p in page["Parameters"]:
                redact.register(p["Value"], *[line for line in p["Value"].splitlines() if len(line.strip()) >= 8])
    except Exception as exc:  # noqa: BLE001 - no lines rather than unmasked lines
        code = getattr(exc, "response", {}).get("Error", {}).get("Code") or type(exc).__name__
        raise DamsoError(f"Could not read {role}'s secrets from SSM ({path}) to mask its log lines ({code}); "
                         "no line is shown unmasked.", hint="Use credentials that may read them (ssm:GetParametersByPath).") from None  # fmt: skip


class Reader:
    """FilterLogEvents over one role's group, restricted to some instances and one container."""

    def __init__(self, client, group: str, instances: list[str] | None = None, container: str | None = None,
                 pattern: str | None = None) -> None:  # fmt: skip
        self.client, self.group, self.instances, self.container, self.pattern = client, group, instances, container, pattern

    def exists(self) -> bool:
        found = self.client.describe_log_groups(logGroupNamePrefix=self.group).get("logGroups", [])
        return any(g["logGroupName"] == self.group for g in found)

    def streams(self) -> list[str]:
        names = []
        for page in self.client.get_paginator("describe_log_streams").paginate(logGroupName=self.group):
            for s in page.get("logStreams", []):
                instance, container = split_stream(s["logStreamName"])
                if (self.instances is None or instance in self.instances) and self.container in (None, container):
                    names.append(s["logStreamName"])
        return sorted(names)

    def sent(self) -> bool:
        """Whether any container of the role's instances (any container: the one asked for may not
        have logged yet) has a stream in the group."""
        return bool(Reader(self.client, self.group, self.instances).streams())

    def read(self, start: int, end: int | None = None) -> list[LogLine]:
        """Every line from start to end (epoch ms, both included), in time order."""
        found = []
        names = self.streams()
        for chunk in (names[i:i + MAX_STREAMS] for i in range(0, len(names), MAX_STREAMS)):
            args = {"logGroupName": self.group, "logStreamNames": chunk, "startTime": start,
                    **({"endTime": end} if end is not None else {}), **({"filterPattern": self.pattern} if self.pattern else {})}  # fmt: skip
            for page in self.client.get_paginator("filter_log_events").paginate(**args):
                for e in page.get("events", []):
                    instance, container = split_stream(e["logStreamName"])
                    found.append(LogLine(e["timestamp"], instance, container, redact.redact(e["message"].rstrip("\n"))))
        return sorted(found, key=lambda line: (line.timestamp, line.instance_id, line.container))


def tail(lines: list[LogLine], per_container: int) -> list[LogLine]:
    """The last `per_container` lines of each instance's container (0: all), in time order."""
    if not per_container:
        return lines
    kept, counts = [], Counter()
    for line in reversed(lines):
        key = (line.instance_id, line.container)
        if counts[key] < per_container:
            counts[key] += 1
            kept.append(line)
    return kept[::-1]


class Follower:
    """The lines to show at each poll: those up to LAG seconds old not shown before."""

    def __init__(self, reader: Reader, start: int, lag: float = LAG, overlap: float = OVERLAP) -> None:
        self.reader, self.start, self.lag, self.overlap = reader, start, int(lag * 1000), int(overlap * 1000)
        self.cursor = start
        self.shown: Counter = Counter()  # (stream, timestamp, message) → how many shown

    def poll(self, now: float) -> list[LogLine]:
        end = int(now * 1000) - self.lag
        if end < self.cursor:
            return []
        since = max(self.start, self.cursor - self.overlap)
        lines = self.reader.read(since, end)
        seen: Counter = Counter()
        new = []
        for line in lines:
            key = (line.instance_id, line.container, line.timestamp, line.message)
            seen[key] += 1
            if seen[key] > self.shown[key]:  # the same line twice in a millisecond is shown twice
                new.append(line)
        self.shown = Counter({k: n for k, n in seen.items() if k[2] >= since})
        self.cursor = end + 1
        return new


def follow(reader: Reader, start: int, per_container: int, poll: float = POLL, clock: Callable[[], float] = time.time,
           sleep: Callable[[float], None] = time.sleep) -> Iterator[LogLine]:  # fmt: skip
    """The last lines of each container since `start`, then every new line as it comes (until stopped)."""
    follower = Follower(reader, start)
    yield from tail(follower.poll(clock()), per_container)
    while True:
        sleep(poll)
        yield from follower.poll(clock())


def since_default(now: float) -> int:
    """Without --since: the last hour."""
    return int((now - timedelta(hours=1).total_seconds()) * 1000)
