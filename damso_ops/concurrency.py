"""Run one function over items in a few threads (stacks, hosts), results in the items' order."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def parallel(fn: Callable[[T], R], items: list[T], jobs: int) -> list[R]:
    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(items) or 1))) as pool:
        return list(pool.map(fn, items))
