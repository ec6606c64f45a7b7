"""What every command group shares: options, event printing, confirmations, the target."""

from __future__ import annotations

import math
from typing import Optional

import typer

DAY = 86400  # the longest any wait may be asked for, in seconds


def not_empty(value):
    """Option and argument callback: an empty value is refused, never taken for the default
    (in CI, --ref "$TAG" with an unset variable must not build the default ref)."""
    for item in value if isinstance(value, (list, tuple)) else [value]:
        if isinstance(item, str) and not item.strip():
            raise typer.BadParameter("must not be empty (in CI, check that the variable you pass is set)")
    return value


def finite(value):
    """Option callback: nan and inf are no number of seconds (some typer versions let nan pass min/max)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a number of seconds")
    return value


ENV_ARG = typer.Argument(..., callback=not_empty, help="Environment name from damso.toml.")
JSON_OPTION = typer.Option(False, "--json", help="Print the result as JSON.")
YES_OPTION = typer.Option(False, "--yes", "-y", help="Apply without asking.")
WAIT_OPTION = typer.Option(True, "--wait/--no-wait", help="Wait until every instance reports the release healthy.")
TIMEOUT_OPTION = typer.Option(None, "--timeout", min=1, max=DAY, callback=finite, help="Seconds to wait for health (default: from the roles).")
CONVERGE_OPTION = typer.Option(False, "--converge-local", help="Sandbox: run each instance's reconcile unit on this machine.")
LOCK_TIMEOUT_OPTION = typer.Option(0, "--lock-timeout", min=0, max=DAY, callback=finite, help="Seconds to wait for another deploy's lock (0: refuse at once).")


def check_wait(wait: bool, timeout: float | None, rollback: bool | None = None) -> None:
    """Flags that mean nothing without waiting for health, refused with --no-wait (one sentence each)."""
    from damso_ops.errors import UsageError

    if wait:
        return
    if rollback:
        raise UsageError("--rollback needs --wait: a failed wave is found, and rolled back, only by waiting for health; "
                         "drop --no-wait or --rollback.")  # fmt: skip
    if timeout is not None:
        raise UsageError("--timeout is how long to wait for health, but --no-wait does not wait; drop one of them.")


def given(ctx: typer.Context, name: str) -> bool:
    """The option was on the command line (or in the environment), not left at its default."""
    return getattr(ctx.get_parameter_source(name), "name", "DEFAULT") in ("COMMANDLINE", "ENVIRONMENT")


def events(json_out: bool = False):
    """on_event(phase, message) for library code: one plain line each on stderr."""
    from damso_ops.console import err

    console = err()

    def on_event(phase: str, message: str) -> None:
        console.print(f"{phase}: {message}", markup=False, highlight=False)

    return on_event


def confirm_plans(yes: bool, question: str = "Apply these changes?"):
    """confirm(changed plans) for deploy-like commands: shows each change, then asks (or not)."""
    from damso_ops.console import err, interactive

    console = err()

    def confirm(changed) -> bool:
        for p in changed:
            console.print(f"[bold]{p.stack}[/]: {p.text()}", markup=True)
            for action, address in p.changes:
                console.print(f"  {action:8} {address}", markup=False)
        if yes:
            return True
        return interactive() and typer.confirm(question, default=False, err=True)

    confirm.approves_all = yes  # planning.approves_all: new stacks are then applied in one run
    return confirm


def ask(yes: bool, question: str, refusal: str) -> None:
    """Go on with --yes or a person's yes; without a TTY and without --yes, refuse with `refusal`."""
    from damso_ops.console import interactive
    from damso_ops.errors import UsageError

    if yes:
        return
    if not interactive():
        raise UsageError(refusal)
    if not typer.confirm(question, default=False, err=True):
        raise typer.Exit(1)


def typed_confirmation(env: str, given: Optional[str], what: str, destroys: str) -> None:
    """Destroying needs the environment's name, typed or passed with --confirm; never a default."""
    from damso_ops.console import interactive
    from damso_ops.errors import UsageError

    if given is None:
        if not interactive():
            raise UsageError(f"Refusing to destroy {what} without confirmation; pass --confirm {env}.")
        given = typer.prompt(f"This destroys {destroys}. Type '{env}' to confirm", err=True)
    if given != env:
        raise UsageError(f"Confirmation '{given}' does not match the environment name '{env}'; nothing destroyed.")


def connect(ctx: typer.Context, env: str, json_out: bool = False, converge_local: bool = False):
    """The command's one Target (and boto3 session); --json also shapes error output."""
    from damso_ops.deploy import target

    ctx.obj.json = json_out
    cfg = ctx.obj.config()
    check_converge_local(cfg, env, converge_local)
    return target.connect(cfg, env)


def check_converge_local(cfg, env: str, converge_local: bool) -> None:
    from damso_ops.errors import UsageError

    if converge_local and not cfg.environment(env).sandbox:
        raise UsageError(f"--converge-local is only for sandbox environments; {env} is not one (it runs on real hosts).")


def print_result(data: dict, json_out: bool, text: str) -> None:
    from damso_ops.console import out, print_json

    if json_out:
        print_json(data)
    else:
        out().print(text, markup=False)
