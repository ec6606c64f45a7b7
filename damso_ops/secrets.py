"""Secrets: SSM Parameter Store SecureStrings under /damso/<env>/<role>/<NAME>.

Sources when a deploy needs a value that SSM does not have yet, in order:
an environment variable of the same name, then the git-ignored
.damso/secrets/<env>.env (lines NAME=value or ROLE.NAME=value).
Every value read is registered for redaction before anything can print it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from damso_ops import redact, values
from damso_ops.errors import DamsoError, UsageError


def prefix(env: str, role: str) -> str:
    return f"/damso/{env}/{role}/"


def parameter(env: str, role: str, name: str) -> str:
    problem = values.secret_name(name)
    if problem:
        raise UsageError(f"{problem}." if problem.startswith("'") else f"The secret name {problem}.")
    return prefix(env, role) + name


def put(ssm, env: str, role: str, name: str, value: str) -> None:
    if not value:
        raise UsageError(f"The value for secret {name} is empty.")
    redact.register(value)
    ssm.put_parameter(Name=parameter(env, role, name), Value=value, Type="SecureString", Overwrite=True)


def names(ssm, env: str, role: str | None = None) -> list[tuple[str, str]]:
    """(role, name) of every secret stored for env (or one role); never the values."""
    path = prefix(env, role) if role else f"/damso/{env}/"
    found = []
    for page in ssm.get_paginator("get_parameters_by_path").paginate(Path=path, Recursive=True, WithDecryption=False):
        for p in page["Parameters"]:
            parts = p["Name"][len(f"/damso/{env}/") :].split("/")
            if len(parts) == 2:
                found.append((parts[0], parts[1]))
    return sorted(found)


def fingerprint(ssm, env: str, role: str) -> str:
    """What the role's stored secrets are now, from their names and SSM versions (never a value):
    part of a release's content, so a rotated secret (`damso secrets set`) makes the next deploy
    a new release, which the hosts apply (new env files, recreated containers, old files removed)."""
    import hashlib

    lines = []
    for page in ssm.get_paginator("get_parameters_by_path").paginate(Path=prefix(env, role), WithDecryption=False):
        lines += [f"{p['Name']}={p.get('Version')}" for p in page["Parameters"]]
    return hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()[:16]


def remove(ssm, env: str, role: str, name: str) -> None:
    try:
        ssm.delete_parameter(Name=parameter(env, role, name))
    except ssm.exceptions.ParameterNotFound:
        raise UsageError(f"Secret {name} is not set for role {role} of {env}.") from None


def local_file(state_dir: Path, env: str) -> Path:
    return state_dir / "secrets" / f"{env}.env"


def read_local(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DamsoError(f"{path} is not UTF-8 text.", hint="Save it as UTF-8 (lines NAME=value).") from None
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise DamsoError(f"{path}:{number}: expected NAME=value or ROLE.NAME=value.")
        values[key.strip()] = value
        redact.register(value)
    return values


def ensure(
    ssm,
    env: str,
    needed: Mapping[str, list[str]],
    state_dir: Path,
    environ: Mapping[str, str] | None = None,
    dry_run: bool = False,
) -> list[str]:
    """Make sure SSM holds every (role, name) needed; seed from env/file. Returns what was seeded.

    Raises one error naming every missing secret and how to set it; nothing is written then.
    """
    environ = os.environ if environ is None else environ
    present = set(names(ssm, env))
    local = read_local(local_file(state_dir, env))
    to_seed, missing = [], []
    for role, wanted in sorted(needed.items()):
        for name in wanted:
            if (role, name) in present:
                continue
            value = environ.get(name) or local.get(f"{role}.{name}") or local.get(name)
            if value:
                redact.register(value)
                to_seed.append((role, name, value))
            else:
                missing.append(f"{role}/{name}")
    if missing:
        first_role, first_name = missing[0].split("/")
        raise DamsoError(
            f"Secret{'s' if len(missing) > 1 else ''} not set for {env}: {', '.join(missing)}.",
            hint=f"Set each with 'damso secrets set {env} {first_role} {first_name}', "
            f"or export it, or add it to {local_file(state_dir, env)}.",
        )
    for role, name, value in [] if dry_run else to_seed:
        put(ssm, env, role, name, value)
    return [f"{r}/{n}" for r, n, _ in to_seed]
