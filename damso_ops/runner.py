"""Commands as data: builders return a Command; one runner executes it.

The runner logs every command with secrets redacted and turns a failure into a
CommandError that names the command and carries the tail of its output.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from damso_ops.errors import CommandError, DamsoError
from damso_ops.redact import redact

log = logging.getLogger("damso.run")

TAIL_LINES = 20


@dataclass(frozen=True)
class Command:
    """What to run: argv, where, and extra environment (merged over os.environ)."""

    argv: tuple[str, ...]
    cwd: Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "argv", tuple(str(a) for a in self.argv))

    def text(self) -> str:
        """The command as a shell line, secrets masked."""
        return redact(shlex.join(self.argv))


@dataclass(frozen=True)
class Result:
    command: Command
    returncode: int
    output: str  # stdout and stderr interleaved, secrets masked

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def tail(self, lines: int = TAIL_LINES) -> str:
        return "\n".join(self.output.splitlines()[-lines:])


def run(
    command: Command,
    *,
    check: bool = True,
    on_line: Callable[[str], None] | None = None,
    timeout: float | None = None,
    ok_codes: tuple[int, ...] = (0,),
) -> Result:
    """Run a command to completion; stream its (redacted) lines to on_line."""
    log.info("run: %s%s", command.text(), f"  (in {command.cwd})" if command.cwd else "")
    env = {**os.environ, **command.env} if command.env else None
    try:
        proc = subprocess.Popen(
            command.argv,
            cwd=command.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
    except FileNotFoundError as exc:
        raise DamsoError(
            f"'{command.argv[0]}' was not found on the PATH (needed for: {command.text()}).",
            hint="Install it, or run 'damso doctor' to see what is missing.",
        ) from exc
    lines: list[str] = []
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = redact(raw.rstrip("\n"))
        lines.append(line)
        log.debug("  | %s", line)
        if on_line:
            on_line(line)
    try:
        returncode = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise DamsoError(f"Command timed out after {timeout:.0f}s: {command.text()}") from None
    result = Result(command, returncode, "\n".join(lines))
    log.info("exit %d: %s", returncode, command.argv[0])
    if check and returncode not in ok_codes:
        raise CommandError(command.text(), returncode, result.tail())
    return result

