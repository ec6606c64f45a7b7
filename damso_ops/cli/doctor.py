"""damso doctor."""

from __future__ import annotations

import typer

HELP = "Check terraform, the Docker engine, registry credentials and damso.toml; one line each."


def doctor(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="Print the checks as JSON."),
) -> None:
    from damso_ops.console import out, print_json
    from damso_ops.doctor import run_checks

    state = ctx.obj
    state.json = json_out
    checks = run_checks(state.config)
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
