"""damso sandbox status|stop: the embedded AWS emulator's background server."""

from __future__ import annotations

import typer

app = typer.Typer(help="The embedded AWS emulator used by sandbox environments.", no_args_is_help=True)


@app.command("status")
def status(ctx: typer.Context, json_out: bool = typer.Option(False, "--json")) -> None:
    """Is the emulator running, and where."""
    from damso_ops import sandbox
    from damso_ops.console import out, print_json

    ctx.obj.json = json_out
    server = sandbox.running(ctx.obj.config().state_dir)
    data = {"running": bool(server), "pid": server.pid if server else None, "endpoint": server.endpoint_url if server else None}
    if json_out:
        print_json(data)
    else:
        out().print(f"running at {server.endpoint_url} (pid {server.pid})" if server else "not running", markup=False)


@app.command("stop")
def stop(ctx: typer.Context) -> None:
    """Stop the emulator this project started (its state is lost)."""
    from damso_ops import sandbox
    from damso_ops.console import out

    stopped = sandbox.stop(ctx.obj.config().state_dir)
    out().print("stopped" if stopped else "was not running", markup=False)
