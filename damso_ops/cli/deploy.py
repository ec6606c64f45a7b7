"""damso deploy / plan / destroy: parse options, call damso_ops.deploy.pipeline, render."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from damso_ops.cli.common import (
    CONVERGE_OPTION,
    ENV_ARG,
    JSON_OPTION,
    LOCK_TIMEOUT_OPTION,
    TIMEOUT_OPTION,
    WAIT_OPTION,
    YES_OPTION,
    check_wait,
    confirm_plans,
    connect,
    events,
    not_empty,
    print_result,
    typed_confirmation,
)  # fmt: skip

DEPLOY_HELP = "Render, release to S3, apply the Terraform stacks, and wait until every instance is healthy."
DEPLOY_EPILOG = """\
[bold]Examples[/]\n
  damso deploy prod                         plan, show, confirm, apply, wait healthy\n
  damso deploy prod --yes --json            the same from CI\n
  damso deploy prod --only api              one role; the others keep their release files\n
  damso deploy sandbox --converge-local     on the embedded emulator, containers on this machine\n
  damso deploy prod --lock-timeout 600      wait up to 10 min if another deploy holds the lock\n
  damso deploy prod --no-rollback           a failed wave stays as it is, for debugging\n
  damso deploy prod --refresh               plan every stack, to find and undo changes made outside damso\n
A stack whose Terraform code, inputs and state are as at its last clean plan is not planned
again (its state changed by anyone, or another machine, plans it); 'damso plan' plans every stack.
Roles move in the waves of environments.<env>.rollout, each healthy before the next;
a failed wave halts the rollout (exit 4) and, by default, goes back to its previous release.
Without a TTY (or with CI set) nothing is applied unless --yes is given.
One deploy, rollback or destroy per environment at a time; see 'damso unlock'."""


ONLY_OPTION = typer.Option([], "--only", callback=not_empty, help="Only this role (repeatable).")
BUILD_MANIFEST_OPTION = typer.Option(
    None, "--build-manifest", callback=not_empty, help="Build manifest to pin images from (default: the latest)."
)  # a str, not a Path: Path("") would be "." and hide an unset variable


def _request(ctx: typer.Context, env: str, only: List[str], build_manifest: Optional[str], json_out: bool):
    """Everything checked offline before the target is connected (bad input changes nothing)."""
    from damso_ops.deploy import request

    ctx.obj.json = json_out
    return request.resolve(ctx.obj.config(), env, only, Path(build_manifest) if build_manifest else None)


def deploy(
    ctx: typer.Context,
    env: str = ENV_ARG,
    yes: bool = YES_OPTION,
    only: List[str] = ONLY_OPTION,
    build_manifest: Optional[str] = BUILD_MANIFEST_OPTION,
    wait: bool = WAIT_OPTION,
    timeout: Optional[float] = TIMEOUT_OPTION,
    converge_local: bool = CONVERGE_OPTION,
    jobs: int = typer.Option(4, "--jobs", "-j", min=1, max=32, help="Stacks planned and applied at once."),
    lock_timeout: float = LOCK_TIMEOUT_OPTION,
    rollback: Optional[bool] = typer.Option(
        None, "--rollback/--no-rollback",
        help="When a wave fails, point its roles back to the release they ran (default: the environment's 'rollback').",
    ),  # fmt: skip
    refresh: bool = typer.Option(
        False, "--refresh", help="Plan every stack, also those unchanged since their last clean plan.",
    ),  # fmt: skip
    json_out: bool = JSON_OPTION,
) -> None:
    from damso_ops.console import print_json
    from damso_ops.deploy import pipeline

    check_wait(wait, timeout, rollback)
    request = _request(ctx, env, only, build_manifest, json_out)
    target = connect(ctx, env, json_out, converge_local)
    result = pipeline.locked_deploy(target, request, lock_timeout=lock_timeout, confirm=confirm_plans(yes),
                                    on_event=events(json_out), wait=wait, timeout=timeout,
                                    converge_local=converge_local, jobs=jobs, rollback=rollback,
                                    refresh=refresh)  # fmt: skip
    if json_out:
        print_json(result.to_dict())
    else:
        _render(result)


def _render(result) -> None:
    from damso_ops.console import out

    console = out()
    applied = ", ".join(result.applied) or "none"
    verb = "rolled out" if result.changed else "was already current (nothing uploaded)"
    console.print(f"{result.env}: release {result.release} {verb}; stacks applied: {applied}.", markup=False)
    if result.rollout and len(result.rollout.get("waves", [])) > 1:
        waves = " → ".join(", ".join(w) for w in result.rollout["waves"])
        console.print(f"  waves: {waves} ({result.rollout.get('state')})", markup=False)
    for instance, report in sorted(result.instances.items()):
        console.print(f"  {report.get('role', '?')} {instance}: {report.get('status')}", markup=False)


PLAN_HELP = "Show what a deploy would change (Terraform plans and rendered files); nothing is applied."


def plan(
    ctx: typer.Context,
    env: str = ENV_ARG,
    only: List[str] = ONLY_OPTION,
    build_manifest: Optional[str] = BUILD_MANIFEST_OPTION,
    full: bool = typer.Option(False, "--full", help="List every resource change and show whole file diffs."),
    json_out: bool = JSON_OPTION,
) -> None:
    from damso_ops.console import out, print_json
    from damso_ops.deploy import pipeline

    request = _request(ctx, env, only, build_manifest, json_out)
    result = pipeline.plan(connect(ctx, env, json_out), request, on_event=events(json_out))
    if json_out:
        print_json(result.to_dict())
        return
    console = out()
    for p in result.plans:
        console.print(f"{p.stack}: {p.text()}", markup=False)
        if full:
            for action, address in p.changes:
                console.print(f"  {action:8} {address}", markup=False)
    for role, grants in sorted(result.permissions.items()):
        for grant in grants:
            console.print(f"permissions: {role}: {grant}", markup=False)
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
    env: str = ENV_ARG,
    only: List[str] = typer.Option([], "--only", callback=not_empty, help="Only this role's stack (repeatable)."),
    confirm: Optional[str] = typer.Option(None, "--confirm", help="The environment's name, to confirm without a prompt."),
    lock_timeout: float = LOCK_TIMEOUT_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    from damso_ops.deploy import destroy as lib
    from damso_ops.deploy import target as targets

    ctx.obj.json = json_out
    stacks = lib.order(targets.offline(ctx.obj.config(), env), only)  # --only checked before AWS
    typed_confirmation(env, confirm, env, f"{', '.join(stacks)} of {env}")
    target = connect(ctx, env, json_out)
    on_event = events(json_out)
    destroyed = lib.destroy(target, stacks, on_event, lock_timeout=lock_timeout)
    print_result({"env": env, "destroyed": destroyed}, json_out, f"{env}: destroyed {', '.join(destroyed) or 'nothing'}.")
