"""The wording of config errors: a pydantic error as the key path and one sentence, never
repeating a value that may be a secret, and the problems found as one ConfigError naming the file."""

from __future__ import annotations

import re
from pathlib import Path

from damso_ops import credentials
from damso_ops.config.fields import HTTPS_URL, NAME_PATTERN
from damso_ops.errors import ConfigError


def key_path(loc: tuple) -> str:
    """The key path of an error; a key that may hold a secret (NAME=value as a key) is not shown."""
    parts = [str(part) for part in loc]
    if parts and parts[-1] == "[key]":
        parts = parts[:-1] if not _shows_a_secret(parts[-2]) else parts[:-2] + ["(a key, not shown)"]
    return ".".join("(not shown)" if _shows_a_secret(p) else p for p in parts) or "(top level)"


def pydantic_message(error: dict) -> str:
    """What is wrong at the key, as the rest of the sentence after the key path."""
    if error["type"] == "missing":
        return "is required"
    if error["type"] == "extra_forbidden":
        return "is not a known setting (check the spelling)"
    message = _plain_message(error)
    given = error.get("input")
    if isinstance(given, str) and _shows_a_secret(given) and given in message:
        return "is refused; it looks like a secret's value, which damso.toml must never hold (what was given is not shown)"
    return message


def _shows_a_secret(text: str) -> bool:
    """NAME=value or a credential's shape: never repeated in an error."""
    return bool(re.match(r"[A-Za-z_][A-Za-z0-9_]*=.", text)) or credentials.looks_like_token(text)


def _plain_message(error: dict) -> str:
    if error["type"] == "string_pattern_mismatch":
        pattern = error.get("ctx", {}).get("pattern")
        if pattern == HTTPS_URL:
            return f"{error['input']!r} must be an https:// URL (webhook receivers are reached over TLS)"
        if pattern == NAME_PATTERN:
            return f"{error['input']!r} must be lowercase letters, digits, '.', '_' or '-'"
        return f"{error['input']!r} must match {pattern}"
    msg = error["msg"]
    return msg[len("Value error, ") :] if msg.startswith("Value error, ") else msg


def config_error(path: Path, problems: list[tuple[str, str]]) -> ConfigError:
    """The first problem as the error, the others as its details."""

    def line(key: str, msg: str) -> str:
        return f"{key} {msg}" if msg.startswith("is ") else f"{key}: {msg}"

    more = "\n".join(line(k, m) for k, m in problems[1:])
    return ConfigError(
        f"{path}: {line(*problems[0])}.",
        details=f"Also:\n{more}" if more else None,
    )
