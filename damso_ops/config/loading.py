"""Loading damso.toml: finding it (the current folder, its parents or DAMSO_CONFIG; the
'damso init' hint when there is none), reading it, and parsing it into a checked Config."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from pydantic import ValidationError

from damso_ops.config import checks
from damso_ops.config.model import CONFIG_NAME, Config
from damso_ops.config.wording import config_error, key_path, pydantic_message
from damso_ops.errors import ConfigError


def parse(text: str, path: Path) -> Config:
    """Validate TOML text; raise ConfigError naming the file and key path."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}.") from None
    try:
        cfg = Config.model_validate({**data, "path": path})
    except ValidationError as exc:
        problems = [(key_path(e["loc"]), pydantic_message(e)) for e in exc.errors()]
        raise config_error(path, problems) from None
    problems = checks.problems(cfg)
    if problems:
        raise config_error(path, problems)
    return cfg


def find(start: Path | None = None) -> Path:
    """damso.toml in the current folder or its parents (or DAMSO_CONFIG)."""
    env = os.environ.get("DAMSO_CONFIG")
    if env:
        return Path(env)
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
        if candidate.is_dir():
            raise ConfigError(f"{candidate} is a folder, not a file.", hint=f"damso reads its settings from a file named {CONFIG_NAME}.")
    raise ConfigError(
        f"No {CONFIG_NAME} found in {here} or any parent folder.",
        hint="Run 'damso init --example damso' (the Damso system) or 'damso init --repo URL' to write one, "
        "or pass --config PATH.",
    )


def load(path: Path | None = None) -> Config:
    path = Path(path) if path else find()
    if path.is_dir():
        inside = path / CONFIG_NAME
        hint = f"Pass --config {inside}." if inside.is_file() else f"Pass the path of a {CONFIG_NAME} file."
        raise ConfigError(f"Config path {path} is a folder, not a file.", hint=hint)
    if not path.is_file():
        raise ConfigError(f"Config file {path} does not exist.", hint="Pass an existing file with --config.")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} on line {line}).",
                          hint="Save it as UTF-8.") from None  # fmt: skip
    except OSError as exc:
        raise ConfigError(f"Config file {path} cannot be read: {exc.strerror}.") from None
    return parse(text, path.resolve())
