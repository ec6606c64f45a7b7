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
  damso deploy prod --lock-timeout 600      wait up to 10 min if another deploy holds the lock\n
Without a TTY (or with CI set) nothing is applied unless --yes is given.
One deploy, rollback or destroy per environment at a time; see 'damso unlock'."""


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


def typed_confirmation(env: str, given: str | None, what: str, destroys: str) -> None:
    """Destroying needs the environment's name, typed or passed with --confirm; never a default."""
    from damso_ops.console import interactive
    from damso_ops.errors import UsageError

    if given is None:
        if not interactive():
            raise UsageError(f"Refusing to destroy {what} without confirmation; pass --confirm {env}.")
        given = typer.prompt(f"This destroys {destroys}. Type '{env}' to confirm", err=True)
    if given != env:
        raise UsageError(f"Confirmation '{given}' does not match the environment name '{env}'; nothing destroyed.")


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
    jobs: int = typer.Option(4, "--jobs", "-j", min=1, help="Stacks planned and applied at once."),
    lock_timeout: float = typer.Option(0, "--lock-timeout", min=0, help="Seconds to wait for another deploy's lock (0: refuse at once)."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    from damso_ops import deploy as lib
    from damso_ops import lock
    from damso_ops.console import err, print_json

    state = ctx.obj
    state.json = json_out
    cfg = state.config()
    lib.preflight(cfg, env, only, build_manifest)
    target = lib.connect(cfg, env)
    if converge_local and not target.aws.emulated:
        raise typer.BadParameter("--converge-local is only for sandbox environments.")
    lib.check_secrets(target, only)
    console = err()
    with lock.for_target(target, "deploy", timeout=lock_timeout, on_event=_events(console, json_out)):
        result = lib.deploy(
            target,
            only=only,
            build_manifest=build_manifest,
            confirm=_confirm_factory(yes, console),
            on_event=_events(console, json_out),
            wait=wait,
            timeout=timeout,
            converge_local=converge_local,
            jobs=jobs,
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


PLAN_HELP = "Show what a deploy would change (Terraform plans and rendered files); nothing is applied."


def plan(
    ctx: typer.Context,
    env: str = typer.Argument(..., help="Environment name from damso.toml."),
    only: List[str] = typer.Option([], "--only", help="Only this role (repeatable)."),
    build_manifest: Optional[Path] = typer.Option(None, "--build-manifest", help="Build manifest to pin images from."),
    full: bool = typer.Option(False, "--full", help="List every resource change and show whole file diffs."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    from damso_ops import deploy as lib
    from damso_ops.console import err, out, print_json

    state = ctx.obj
    state.json = json_out
    lib.preflight(state.config(), env, only, build_manifest)
    target = lib.connect(state.config(), env)
    result = lib.deploy(
        target,
        only=only,
        build_manifest=build_manifest,
        confirm=lambda changed: False,
        on_event=_events(err(), json_out),
        wait=False,
        plan_only=True,
    )
    if json_out:
        print_json(result.to_dict())
        return
    console = out()
    for p in result.plans:
        console.print(f"{p.stack}: {p.text()}", markup=False)
        if full:
            for action, address in p.changes:
                console.print(f"  {action:8} {address}", markup=False)
    for stack in result.pending:
        console.print(f"{stack}: planned after the stacks it depends on are applied", markup=False)
    if not result.pending:
        if not result.diffs:
            console.print("files: unchanged against the current release", markup=False)
        for name, text in result.diffs.items():
            console.print(f"files: {name} changes", markup=False)
            if full:
                console.print(text, markup=False)


DESTROY_HELP = "Destroy an environment's stacks (or one role's), after typing the environment's name."


def destroy(
    ctx: typer.Context,
    env: str = typer.Argument(..., help="Environment name from damso.toml."),
    only: List[str] = typer.Option([], "--only", help="Only this role's stack (repeatable)."),
    confirm: Optional[str] = typer.Option(None, "--confirm", help="The environment's name, to confirm without a prompt."),
    lock_timeout: float = typer.Option(0, "--lock-timeout", min=0, help="Seconds to wait for another deploy's lock (0: refuse at once)."),
    json_out: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    from damso_ops import deploy as lib
    from damso_ops import lock
    from damso_ops.console import err, out, print_json

    state = ctx.obj
    state.json = json_out
    cfg = state.config()
    target = lib.connect(cfg, env)
    stacks = lib.destroy_order(target, only)
    typed_confirmation(env, confirm, env, f"{', '.join(stacks)} of {env}")
    on_event = _events(err(), json_out)
    with lock.for_target(target, "destroy", timeout=lock_timeout, on_event=on_event, create=False):
        destroyed = lib.destroy(target, stacks, on_event=on_event)
    if json_out:
        print_json({"env": env, "destroyed": destroyed})
    else:
        out().print(f"{env}: destroyed {', '.join(destroyed) or 'nothing'}.", markup=False)
