"""Small readers and writers for the diagnosis (damso_ops/operate/diagnose.py): numbers, byte sizes,
docker's times, durations in words, and the line of an output that says something. Pure; never raise."""

from __future__ import annotations

import re
from datetime import datetime, timezone

OUTPUT_CHARS = 200


def as_int(value) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def size(n: int | None) -> str | None:
    if not n or n <= 0:
        return None
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value == int(value) or value >= 10 else f"{value:.1f} {unit}"
    return f"{n} B"


def parse_time(text) -> datetime | None:
    """docker's RFC 3339 times have nanoseconds; Python takes microseconds."""
    if not text or not isinstance(text, str) or text.startswith("0001-"):
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", text.strip()).replace("Z", "+00:00")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def seconds_between(start, end) -> float | None:
    a, b = parse_time(start), parse_time(end)
    if a is None or b is None or b < a:
        return None
    return (b - a).total_seconds()


def span(start, end) -> str | None:
    seconds = seconds_between(start, end)
    return duration(seconds) if seconds is not None else None


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h".replace(".0 h", " h")


def meaningful(output) -> str | None:
    """The first line of a probe's output that says something (not blank, not curl's progress meter)."""
    for line in str(output or "").splitlines():
        line = line.strip()
        if not line or re.fullmatch(r"[\d\s.:%kMG/\-|-]+", line) or line.startswith("% Total") or "Dload" in line:
            continue
        return line[:OUTPUT_CHARS]
    return None


def first_line(text) -> str:
    return meaningful(text) or str(text or "").strip().split("\n")[0][:OUTPUT_CHARS]


def last_meaningful(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return (lines[-1] if lines else str(text).strip())[:OUTPUT_CHARS]


def last_line(c: dict) -> str | None:
    for line in reversed(c.get("logs") or []):
        if isinstance(line, str) and line.strip():
            return line.strip()[:OUTPUT_CHARS]
    return None
