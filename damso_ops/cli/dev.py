"""damso dev gpu start|stop|status|ssh: the team's GPU dev boxes (see damso_ops/hosts/devbox.py)."""

from __future__ import annotations

import typer

from damso_ops.cli.common import connect, events, finite, given, not_empty

app = typer.Typer(help="Developer machines: damso dev gpu start|stop|status|ssh NAME.", no_args_is_help=True)
gpu = typer.Typer(
    help="The team's GPU dev boxes, created stopped by the gpu-dev stack: start one, stop it, see what runs and costs.\n\n"
    "damso dev gpu start alice · damso dev gpu status · damso dev gpu stop alice",
    no_args_is_help=True,
)
app.add_typer(gpu, name="gpu")

ENV_OPTION = typer.Option("dev", "--env", "-e", callback=not_empty, help="Environment whose boxes these are (environments.<env>.gpu_dev).")
JSON_OPTION = typer.Option(False, "--json", help="Print the result as JSON.")
NAME = typer.Argument(..., callback=not_empty, help="Box name from environments.<env>.gpu_dev in damso.toml.")


def _target(ctx: typer.Context, env: str, name: str | None, json_out: bool = False):
    """Check env and box before anything is touched, then connect."""
    from damso_ops.hosts import devbox

    devbox.selected(env, ctx.obj.config().environment(env), name)
    return connect(ctx, env, json_out)


def _confirm(yes: bool):
    """Deletes and replacements in the gpu-dev stack are shown and need a yes."""
    from damso_ops.console import err, interactive

    def confirm(changes) -> bool:
        for action, address in changes:
            err().print(f"  {action:8} {address}", markup=False)
        return yes or (interactive() and typer.confirm("Apply these changes to the gpu-dev stack?", default=False, err=True))

    return confirm


def _line(st) -> str:
    from damso_ops.hosts import devbox_status
    from damso_ops.timing import format_duration

    if st.instance is None:
        return f"{st.name}: {devbox_status.NOT_CREATED}"
    i = st.instance
    ips = f"public {i.public_ip or '-'}, private {i.private_ip or '-'}"
    uptime = f", up {format_duration(st.uptime)}" if st.uptime is not None else ""
    return f"{st.name}: {st.state}, {i.instance_type} ({devbox_status.format_price(st.hourly)}), {ips}{uptime} [{i.id}]"


START_EPILOG = """\
[bold]Examples[/]\n
  damso dev gpu start alice                  creates the box if needed, starts it, waits for SSH, prints ubuntu@IP\n
  damso dev gpu start alice --env dev --json the same, as JSON\n
  damso dev gpu start alice --no-ssh-wait    return as soon as EC2 says running\n
The gpu-dev stack is applied only when its plan is not empty; deleting or replacing a box needs --yes.
It is planned and applied under the environment's lock: while a deploy holds it, start waits (--lock-timeout).

The environment's shared stack must be deployed first (damso deploy ENV)."""


@gpu.command("start", epilog=START_EPILOG)
def start(
    ctx: typer.Context,
    name: str = NAME,
    env: str = ENV_OPTION,
    ssh_wait: bool = typer.Option(True, "--ssh-wait/--no-ssh-wait", help="Wait until port 22 answers (skipped in the sandbox)."),
    ssh_timeout: float = typer.Option(300, "--ssh-timeout", min=1, max=3600, callback=finite, help="Seconds to wait for SSH."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Apply gpu-dev stack deletes and replacements without asking."),
    lock_timeout: float = typer.Option(1800, "--lock-timeout", min=0, max=86400, callback=finite,
                                       help="Seconds to wait while a deploy holds the environment's lock (0: refuse at once)."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Start a GPU dev box (creating it first if needed); print user@ip."""
    from damso_ops.console import out, print_json
    from damso_ops.hosts import devbox

    if not ssh_wait and given(ctx, "ssh_timeout"):
        from damso_ops.errors import UsageError

        raise UsageError("--ssh-timeout is how long to wait for SSH, but --no-ssh-wait does not wait; drop one of them.")
    target = _target(ctx, env, name, json_out)
    result = devbox.start(target, name, events(), _confirm(yes), ssh_wait=ssh_wait, ssh_timeout=ssh_timeout,
                          lock_timeout=lock_timeout)
    if json_out:
        print_json(result.to_dict())
        return
    console = out()
    console.print(f"{_line(result.box)}; SSH {result.ssh}.", markup=False)
    console.print(result.box.login or "no public IP", markup=False)


STOP_EPILOG = """\
[bold]Examples[/]\n
  damso dev gpu stop alice                   stop and wait until stopped (the disk is kept)\n
  damso dev gpu stop alice --env dev --json"""


@gpu.command("stop", epilog=STOP_EPILOG)
def stop(ctx: typer.Context, name: str = NAME, env: str = ENV_OPTION, json_out: bool = JSON_OPTION) -> None:
    """Stop a GPU dev box and wait until it has stopped."""
    from damso_ops.console import out, print_json
    from damso_ops.hosts import devbox

    target = _target(ctx, env, name, json_out)
    st, was = devbox.stop(target, name, events())
    if json_out:
        print_json({**st.to_dict(), "was": was})
    else:
        out().print(f"{_line(st)} (was {was}).", markup=False)


STATUS_EPILOG = """\
[bold]Examples[/]\n
  damso dev gpu status                       every box of dev: state, type, price per hour, IPs, uptime\n
  damso dev gpu status alice --env dev --json\n
A box running longer than its warn_after_hours is named in a warning on stderr."""


@gpu.command("status", epilog=STATUS_EPILOG)
def status(
    ctx: typer.Context,
    name: str | None = typer.Argument(None, callback=not_empty, help="One box (default: all of the environment's)."),
    env: str = ENV_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """State, instance type, IPs, uptime and hourly price of the GPU dev boxes."""
    from damso_ops.console import err, out, print_json
    from damso_ops.hosts import devbox

    target = _target(ctx, env, name, json_out)
    boxes = devbox.status(target, name)
    warnings = [b.warning for b in boxes if b.warning]
    if json_out:
        print_json({"env": env, "boxes": [b.to_dict() for b in boxes], "warnings": warnings})
    else:
        console = out()
        for b in boxes:
            console.print(_line(b), markup=False)
    for w in warnings:
        err().print(f"Warning: {w}", markup=False)


SSH_EPILOG = """\
[bold]Examples[/]\n
  damso dev gpu ssh alice                    print the ssh command\n
  damso dev gpu ssh alice --exec             run it\n
  damso dev gpu ssh alice --exec -- -L 8888:localhost:8888   with a port forward for Jupyter"""


@gpu.command("ssh", epilog=SSH_EPILOG)
def ssh(
    ctx: typer.Context,
    name: str = NAME,
    extra: list[str] | None = typer.Argument(None, help="Extra ssh options, after --."),
    env: str = ENV_OPTION,
    exec_: bool = typer.Option(False, "--exec", help="Run ssh instead of printing the command."),
) -> None:
    """The ssh command for a running GPU dev box."""
    import os
    import shlex
    import shutil

    from damso_ops.console import out
    from damso_ops.errors import DamsoError, UsageError
    from damso_ops.hosts import devbox

    if exec_ and ctx.obj.config().environment(env).sandbox:  # before AWS
        raise UsageError("--exec cannot reach a sandbox box: emulated instances run no SSH server.")
    target = _target(ctx, env, name)
    argv = devbox.ssh_argv(target, name, list(extra or []))
    if not exec_:
        out().print(shlex.join(argv), markup=False)
        return
    if not shutil.which("ssh"):
        raise DamsoError("ssh is not on the PATH.", hint="Install an OpenSSH client.")
    os.execvp("ssh", argv)
