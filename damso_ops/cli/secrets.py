"""damso secrets set|list|rm: SSM SecureStrings under /damso/<env>/<role>/<NAME>, and secret
files (set --file) under /damso/<env>/<role>/files/<NAME>."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from damso_ops.cli.common import ENV_ARG, not_empty

ROLE_ARG = typer.Argument(..., callback=not_empty, help="Role from environments.<env>.roles in damso.toml.")
NAME_ARG = typer.Argument(..., callback=not_empty, help="Like API_JWT_SECRET.")
# Words after NAME (a value typed on the command line): refused without click's echo of them.
EXTRA_ARGS = typer.Argument(None, hidden=True)


def _no_value(extra: Optional[List[str]]) -> None:
    from damso_ops.errors import UsageError

    if extra:
        raise UsageError("damso secrets takes no value on the command line (it would stay in the shell history and the "
                         "process list); pipe it on stdin or type it at the prompt (what was given is not shown).")  # fmt: skip

app = typer.Typer(
    help="Secrets in SSM Parameter Store (SecureString), never in git, Terraform or S3.\n\n"
    "damso secrets set prod api API_JWT_SECRET   (value from stdin or a hidden prompt)\n\n"
    "damso secrets set prod api APNS_KEY_P8 --file AuthKey.p8   (a secret file of roles.api.secret_files)",
    no_args_is_help=True,
)


def _check(ctx: typer.Context, env: str, role: str | None, name: str | None = None) -> None:
    """Environment, role and secret name, checked before AWS is reached."""
    from damso_ops import secrets
    from damso_ops.errors import UsageError

    roles = ctx.obj.config().environment(env).roles
    if role is not None and role not in roles:
        raise UsageError(f"Unknown role '{role}' in {env} (roles: {', '.join(sorted(roles)) or 'none'}).")
    if name is not None:
        secrets.parameter(env, role, name)


def _ssm(ctx: typer.Context, env: str, role: str | None, name: str | None = None):
    from damso_ops.cli.common import connect

    _check(ctx, env, role, name)
    return connect(ctx, env).aws.client("ssm")


@app.command("set")
def set_(
    ctx: typer.Context,
    env: str = ENV_ARG,
    role: str = ROLE_ARG,
    name: str = NAME_ARG,
    from_env: Optional[str] = typer.Option(None, "--from-env", callback=not_empty, help="Read the value from this environment variable."),
    file: Optional[Path] = typer.Option(None, "--file", help="Store this file as the role's secret file NAME "
                                        "(roles.<role>.secret_files; at most 4,096 bytes of text)."),
    extra: Optional[List[str]] = EXTRA_ARGS,
) -> None:
    """Store a secret. The value comes from --from-env, stdin, or a hidden prompt; never from the command line.
    With --file, a secret file's content comes from that file."""
    import os

    from damso_ops import credentials, secrets
    from damso_ops.console import err
    from damso_ops.errors import UsageError

    _no_value(extra)
    _check(ctx, env, role, name)
    if file is not None:
        declared = ctx.obj.config().environment(env).roles[role].secret_files
        if name not in declared:
            raise UsageError(f"{name} is not a secret file of role {role} in {env} (environments.{env}.roles.{role}.secret_files: "
                             f"{', '.join(sorted(declared)) or 'none'}).")  # fmt: skip
        if from_env:
            raise UsageError("Give --file or --from-env, not both.")
        content = secrets.file_value(file, name)  # size and text checked before AWS
        secrets.put_file(_ssm(ctx, env, role), env, role, name, content)
        err().print(f"stored {secrets.file_parameter(env, role, name)}", markup=False)
        return
    if from_env:
        if credentials.secret_name(from_env):  # a value typed where the variable's name belongs: never echoed
            raise UsageError("--from-env takes the name of an environment variable (like API_JWT_SECRET), "
                             "not a value; what was given is not shown.")  # fmt: skip
        value = os.environ.get(from_env, "")
        if not value:
            raise UsageError(f"Environment variable {from_env} is not set or empty.")
    elif not sys.stdin.isatty():
        value = sys.stdin.read().rstrip("\n")
    else:
        value = typer.prompt(f"{name} for {role} of {env}", hide_input=True, err=True)
    if not value:
        raise UsageError(f"The value for secret {name} is empty; nothing stored.")
    secrets.put(_ssm(ctx, env, role), env, role, name, value)
    err().print(f"stored {secrets.parameter(env, role, name)}", markup=False)


@app.command("list")
def list_(
    ctx: typer.Context,
    env: str = ENV_ARG,
    role: Optional[str] = typer.Argument(None, callback=not_empty, help="Only this role's secrets."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """List secret names (never values)."""
    from damso_ops import secrets
    from damso_ops.console import out, print_json

    ctx.obj.json = json_out
    found = secrets.names(_ssm(ctx, env, role), env, role)
    if json_out:
        print_json([{"role": r, "name": n} for r, n in found])
    else:
        for r, n in found:
            out().print(f"{r}/{n}", markup=False)


@app.command("rm")
def rm(
    ctx: typer.Context,
    env: str = ENV_ARG,
    role: str = ROLE_ARG,
    name: str = NAME_ARG,
    file: bool = typer.Option(False, "--file", help="Remove the secret file NAME (set with --file)."),
    extra: Optional[List[str]] = EXTRA_ARGS,
) -> None:
    """Delete a secret (or, with --file, a secret file)."""
    from damso_ops import secrets
    from damso_ops.console import err

    _no_value(extra)
    ssm = _ssm(ctx, env, role, name)
    if file:
        secrets.remove_file(ssm, env, role, name)
        err().print(f"removed {secrets.file_parameter(env, role, name)}", markup=False)
        return
    secrets.remove(ssm, env, role, name)
    err().print(f"removed {secrets.parameter(env, role, name)}", markup=False)
