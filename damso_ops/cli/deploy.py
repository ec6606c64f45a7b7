"""damso deploy / plan / destroy: parse options, call damso_ops.deploy, render."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

DEPLOY_HELP = "Render, release to S3, apply the Terraform stacks, and wait until every instance is healthy."
DEPLOY_EPILOG = """\
[bold]Examples[/]\n
  damso deploy prod                         plan, show, confirm, apply, wait healthy\n
  damso deploy prod --yes --json            the same from CI\n
  damso deploy prod --only api              one role; the others keep their release files\n
  damso deploy sandbox --converge-local     on the embedded emulator, containers on this machine\n
Without a TTY (or with CI set) nothing is applied unless --yes is given."""


def _confirm_factory(yes: bool, console):
    from damso_ops.console import interactive

    def confirm(changed) -> bool:
        for p in changed:
            console.print(f"[bold]{p.stack}[/]: {p.text()}", markup=True)
            for action, address in p.changes:
                console.print(f"  {action:8} {address}", markup=False)
        if yes:
            return True
        if not interactive():
            return False
        return typer.confirm("Apply these changes?", default=False, err=True)

    return confirm


def _events(console, json_out: bool):
    def on_event(phase: str, message: str) -> None:
        console.print(f"{phase}: {message}", markup=False, highlight=False)

    return on_event


def deploy(
    ctx: typer.Context,
    env: str = typer.Argument(..., help="Environment name from damso.toml."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Apply without asking."),
    only: List[str] = typer.Option([], "--only", help="Only this role (repeatable)."),
    build_manifest: Optional[Path] = typer.Option(None, "--build-manifest", help="Build manifest to pin images from (default: the latest)."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Wait until every instance reports the release healthy."),
    timeout: Optional[float] = typer.Option(None, "--timeout", help="Seconds to wait for health (default: from the roles)."),
    converge_local: bool = typer.Option(False, "--converge-local", help="Sandbox: run each instance's reconcile unit on this machine."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    from damso_ops import deploy as lib
    from damso_ops.console import err, print_json

    state = ctx.obj
    state.json = json_out
    cfg = state.config()
    target = lib.connect(cfg, env)
    if converge_local and not target.aws.emulated:
        raise typer.BadParameter("--converge-local is only for sandbox environments.")
    console = err()
    result = lib.deploy(
        target,
        only=only,
        build_manifest=build_manifest,
        confirm=_confirm_factory(yes, console),
        on_event=_events(console, json_out),
        wait=wait,
        timeout=timeout,
        converge_local=converge_local,
    )
    if json_out:
        print_json(result.to_dict())
    else:
        _render(result)


def _render(result) -> None:
    from damso_ops.console import out

    console = out()
    applied = ", ".join(result.applied) or "none"
    verb = "is now current" if result.changed else "was already current (nothing uploaded)"
    console.print(f"{result.env}: release {result.release} {verb}; stacks applied: {applied}.", markup=False)
    for instance, report in sorted(result.instances.items()):
        console.print(f"  {report.get('role', '?')} {instance}: {report.get('status')}", markup=False)
