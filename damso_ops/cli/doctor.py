"""damso doctor."""

from __future__ import annotations

from enum import Enum
from typing import Optional

import typer

from damso_ops.cli.common import not_empty

HELP = (
    "Check damso.toml, Terraform 1.10+, the Docker engine and registry credentials; one line each. "
    "--for build or --for deploy checks only what that CI job needs."
)


class Purpose(str, Enum):
    build = "build"
    deploy = "deploy"


def doctor(
    ctx: typer.Context,
    purpose: Optional[Purpose] = typer.Option(
        None, "--for",
        help="Only what one job needs. build: damso.toml, git and the source repositories, the Docker engine, "
        "registry credentials. deploy: damso.toml, Terraform 1.10+, AWS credentials (none for a sandbox).",
    ),
    env: Optional[str] = typer.Option(
        None, "--env", "-e", callback=not_empty,
        help="Check that damso.toml has this environment; with --for deploy, AWS credentials in its region only.",
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the checks as JSON."),
) -> None:
    from damso_ops.console import out, print_json
    from damso_ops.doctor import run_checks

    state = ctx.obj
    state.json = json_out
    checks = run_checks(state.config, purpose.value if purpose else None, env)
    if json_out:
        print_json({"ok": all(c.ok for c in checks), "checks": [c.to_dict() for c in checks]})
    else:
        console = out()
        for c in checks:
            mark = "[green]ok[/]  " if c.ok else "[red]FAIL[/]"
            console.print(f"{mark} {c.name}: ", end="", markup=True)
            console.print(c.detail, markup=False)
    if not all(c.ok for c in checks):
        raise typer.Exit(1)
