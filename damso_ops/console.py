"""How damso talks to people and scripts: rich on a TTY, plain lines in CI, JSON on request."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

from rich.console import Console

from damso_ops.redact import redact


def interactive() -> bool:
    """A person at a terminal: not CI, stdin and stderr are TTYs."""
    return not os.environ.get("CI") and sys.stdin.isatty() and sys.stderr.isatty()


def fancy() -> bool:
    """Live progress is only for a TTY outside CI."""
    return not os.environ.get("CI") and sys.stderr.isatty()


def out() -> Console:
    """Results (tables, JSON) go to stdout; wide enough for image names when piped."""
    console = Console(highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console.width = max(console.width, 160)
    return console


def err() -> Console:
    """Progress, warnings and errors go to stderr."""
    return Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(data) -> None:
    sys.stdout.write(redact(json.dumps(data, indent=2, sort_keys=True, default=str)) + "\n")


class _RedactFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = ()
        return True


def setup_logging(verbose: bool, log_file: Path | None) -> None:
    """damso.* loggers: to stderr when verbose, always to the log file when one is given."""
    logger = logging.getLogger("damso")
    logger.setLevel(logging.DEBUG)
    logger.handlers.clear()
    logger.propagate = False
    if verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s", "%H:%M:%S"))
        handler.addFilter(_RedactFilter())
        logger.addHandler(handler)
    if log_file:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_file, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        handler.addFilter(_RedactFilter())
        logger.addHandler(handler)
