"""Waiting and durations: the one poll loop every wait in damso goes through, and the one
way damso writes a length of time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    interval: float,
    what: str = "the condition",
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Call probe() until it returns something other than None and return that.

    The probe runs at least once; exceptions it raises end the wait. After `timeout`
    seconds a TimeoutError is raised. (tenacity was considered: its retry-on-result
    API needs more code at each call than this function has in all.)
    """
    deadline = clock() + max(0.0, timeout)
    while True:
        result = probe()
        if result is not None:
            return result
        left = deadline - clock()
        if left <= 0:
            raise TimeoutError(f"{what} did not happen within {timeout:g} s")
        sleep(min(interval, left))


def format_duration(seconds: float | None) -> str:
    """'-', '<1 min', '5 min', '2 h 03 min', '3 d 4 h'."""
    if seconds is None:
        return "-"
    minutes = int(max(0, seconds)) // 60
    if minutes < 1:
        return "<1 min"
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"
