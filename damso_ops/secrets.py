"""Secrets: SSM Parameter Store SecureStrings under /damso/<env>/<role>/<NAME>, and secret
files (roles.<role>.secret_files) under /damso/<env>/<role>/files/<NAME>: one level down, so a
role's env file never gets them (the host reads its secrets without recursion).

Sources when a deploy needs a value that SSM does not have yet, in order:
an environment variable of the same name, then the git-ignored
.damso/secrets/<env>.env (lines NAME=value or ROLE.NAME=value).
Every value read is registered for redaction before anything can print it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from damso_ops import credentials, redact
from damso_ops.errors import DamsoError, UsageError


def prefix(env: str, role: str) -> str:
    return f"/damso/{env}/{role}/"


def parameter(env: str, role: str, name: str) -> str:
    problem = credentials.secret_name(name)
    if problem:
        raise UsageError(f"{problem}." if problem.startswith("'") else f"The secret name {problem}.")
    return prefix(env, role) + name


# damso stores Standard-tier parameters: a SecureString holds 4 KB there (Advanced: 8 KB, charged per parameter).
FILE_LIMIT = 4096


def file_parameter(env: str, role: str, name: str) -> str:
    parameter(env, role, name)  # the same names as secrets
    return f"{prefix(env, role)}files/{name}"


def file_value(path: Path, name: str) -> str:
    """A secret file's content, checked before AWS is reached: UTF-8 text within SSM's size."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"Cannot read {path} for secret file {name}: {exc.strerror}.") from None
    if not data:
        raise UsageError(f"{path} is empty; nothing stored for secret file {name}.")
    if len(data) > FILE_LIMIT:
        raise UsageError(f"{path} is {len(data):,} bytes, more than the {FILE_LIMIT:,} bytes an SSM SecureString "
                         f"parameter (Standard tier, which damso uses) holds, so secret file {name} cannot be stored.")  # fmt: skip
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text, which an SSM parameter cannot hold; store a text form "
                         f"(PEM, or base64 that the container decodes) as secret file {name}.") from None


def put_file(ssm, env: str, role: str, name: str, value: str) -> None:
    redact.register(value)
    for line in value.splitlines():
        if len(line.strip()) >= 8:
            redact.register(line)
    ssm.put_parameter(Name=file_parameter(env, role, name), Value=value, Type="SecureString", Overwrite=True)


def file_names(ssm, env: str, role: str) -> list[str]:
    found = []
    for page in ssm.get_paginator("get_parameters_by_path").paginate(Path=f"{prefix(env, role)}files/", WithDecryption=False):
        found += [p["Name"].rsplit("/", 1)[-1] for p in page["Parameters"]]
    return sorted(found)


def put(ssm, env: str, role: str, name: str, value: str) -> None:
    if not value:
        raise UsageError(f"The value for secret {name} is empty.")
    redact.register(value)
    ssm.put_parameter(Name=parameter(env, role, name), Value=value, Type="SecureString", Overwrite=True)


def names(ssm, env: str, role: str | None = None) -> list[tuple[str, str]]:
    """(role, name) of every secret stored for env (or one role), secret files as files/NAME; never the values."""
    path = prefix(env, role) if role else f"/damso/{env}/"
    found = []
    for page in ssm.get_paginator("get_parameters_by_path").paginate(Path=path, Recursive=True, WithDecryption=False):
        for p in page["Parameters"]:
            parts = p["Name"][len(f"/damso/{env}/") :].split("/")
            if len(parts) == 2:
                found.append((parts[0], parts[1]))
            elif len(parts) == 3 and parts[1] == "files":  # a secret file
                found.append((parts[0], f"files/{parts[2]}"))
    return sorted(found)


def fingerprint(ssm, env: str, role: str) -> str:
    """What the role's stored secrets are now, from their names and SSM versions (never a value):
    part of a release's content, so a rotated secret (`damso secrets set`) makes the next deploy
    a new release, which the hosts apply (new env files, recreated containers, old files removed)."""
    import hashlib

    lines = []
    for path in (prefix(env, role), f"{prefix(env, role)}files/"):  # secrets, then secret files
        for page in ssm.get_paginator("get_parameters_by_path").paginate(Path=path, WithDecryption=False):
            lines += [f"{p['Name']}={p.get('Version')}" for p in page["Parameters"]]
    return hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()[:16]


def remove(ssm, env: str, role: str, name: str) -> None:
    try:
        ssm.delete_parameter(Name=parameter(env, role, name))
    except ssm.exceptions.ParameterNotFound:
        raise UsageError(f"Secret {name} is not set for role {role} of {env}.") from None


def remove_file(ssm, env: str, role: str, name: str) -> None:
    try:
        ssm.delete_parameter(Name=file_parameter(env, role, name))
    except ssm.exceptions.ParameterNotFound:
        raise UsageError(f"Secret file {name} is not set for role {role} of {env}.") from None


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
    needed_files: Mapping[str, list[str]] | None = None,
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
    for role, wanted in sorted((needed_files or {}).items()):
        stored = set(file_names(ssm, env, role)) if wanted else set()
        files = [n for n in wanted if n not in stored]
        if files and not missing:
            raise DamsoError(
                f"Secret file{'s' if len(files) > 1 else ''} not set for {env}: "
                f"{', '.join(f'{role}/files/{n}' for n in files)}.",
                hint=f"Store each with 'damso secrets set {env} {role} {files[0]} --file PATH' (at most {FILE_LIMIT:,} bytes).",
            )
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
