"""Where damso keeps things: its shipped data, the user's cache."""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """terraform/ or templates/: from the checkout, else from inside the installed package."""
    candidates = (_PACKAGE / "_data" / name, _PACKAGE.parent / name)
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"damso's {name}/ folder is missing from this installation ({_PACKAGE}).")


EXAMPLES = {"damso": "damso.example.toml"}  # --example name → the file at the top of the checkout


def example(name: str) -> Path:
    """A shipped example damso.toml: from the checkout, else from inside the installed package."""
    file = EXAMPLES[name]
    for candidate in (_PACKAGE / "_data" / file, _PACKAGE.parent / file):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"damso's {file} is missing from this installation ({_PACKAGE}).")


def cache_dir() -> Path:
    """Per-user cache (git mirrors); DAMSO_CACHE_DIR overrides."""
    override = os.environ.get("DAMSO_CACHE_DIR")
    if override:
        return Path(override)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("damso"))
