"""Names that must never be values: secret and credential-variable names, and the shapes of
well-known credentials (a token typed where its name belongs is refused and never echoed)."""

from __future__ import annotations

import re

ENV_VAR_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
SECRET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TOKEN = re.compile(
    r"^(gh[pousr]_[A-Za-z0-9]{16,}|github_pat_\w{16,}|glpat-[\w-]{16,}|xox[abprs]-[\w-]{8,}|sk-[\w-]{16,}"
    r"|sk_(live|test)_\w{8,}|(AKIA|ASIA)[A-Z0-9]{16}|dckr_pat_[\w-]{16,}|-----BEGIN [A-Z ]*PRIVATE KEY)"
)


def looks_like_token(value: str) -> bool:
    """A value of a well-known credential shape (a GitHub or GitLab token, an AWS key id, a private key…)."""
    return bool(TOKEN.match(value))


def looks_like_secret(value: str) -> bool:
    """A value that may be a credential typed where a name belongs: a token shape, NAME=value, or
    long with mixed letters and digits and not in capitals."""
    if looks_like_token(value) or "=" in value:
        return True
    classes = sum(bool(re.search(p, value)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]"))
    return len(value) >= 20 and classes >= 2 and not ENV_VAR_NAME.match(value)


def secret_name(value: str) -> str | None:
    """A secret's name (like API_JWT_SECRET); the reason repeats the value only when it cannot be one."""
    if SECRET_NAME.match(value) and not looks_like_secret(value):
        return None
    if "=" in value:
        return ("is NAME=value; give only the name: the value goes in with 'damso secrets set' "
                "(stdin or its prompt), never on a command line or in damso.toml (what was given is not shown)")
    if looks_like_secret(value):
        return "looks like a secret's value, not its name (like API_JWT_SECRET); what was given is not shown"
    return f"{value!r} is not a valid secret name: use letters, digits and '_' (like API_JWT_SECRET)"


def env_var_name(value: str) -> str | None:
    """The name of an environment variable that holds a credential (capitals, digits, '_'). The
    reason never repeats the value: it may be the credential itself, typed where its name belongs."""
    if ENV_VAR_NAME.match(value) and not looks_like_secret(value):
        return None
    return ("must be the name of an environment variable in capitals, digits and '_' (like GHCR_TOKEN), "
            "never the value itself (what was given is not shown)")
