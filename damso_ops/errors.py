"""One error type for everything a user can fix; one exit path (see cli.main)."""

from __future__ import annotations


class DamsoError(Exception):
    """An error the user can act on: one clear sentence, shown without a traceback."""

    exit_code = 1
    data: dict | None = None  # extra fields for --json output (e.g. a halted rollout's state)

    def __init__(self, message: str, *, hint: str | None = None, details: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} {self.hint}"


class ConfigError(DamsoError):
    """damso.toml is missing or invalid; the message names the file and key path."""

    exit_code = 2


class UsageError(DamsoError):
    """The command line asks for something that does not exist (service, env, ref)."""

    exit_code = 2


class CommandError(DamsoError):
    """An external command (git, terraform, docker) failed; names the command."""

    def __init__(self, argv_text: str, returncode: int, output_tail: str):
        super().__init__(
            f"Command failed with exit code {returncode}: {argv_text}",
            details=output_tail or None,
        )
        self.argv_text = argv_text
        self.returncode = returncode
        self.output_tail = output_tail
