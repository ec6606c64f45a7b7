"""Every value known to be secret is masked in everything damso prints or logs."""

from __future__ import annotations

import threading

MASK = "********"
_MIN_LEN = 4  # shorter values would mask ordinary words

_lock = threading.Lock()
_secrets: set[str] = set()


def register(*values: str | None) -> None:
    """Remember values that must never be shown."""
    with _lock:
        for value in values:
            if value and len(value) >= _MIN_LEN:
                _secrets.add(value)


def redact(text: str) -> str:
    """Return text with every registered secret replaced by a mask."""
    if not text:
        return text
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def forget_all() -> None:
    """For tests: start from an empty set."""
    with _lock:
        _secrets.clear()
