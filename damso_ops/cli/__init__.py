"""The `damso` command. Thin: parse options, call the library, render the result."""

from __future__ import annotations

import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import typer
from typer.core import TyperGroup

from damso_ops import __version__
from damso_ops.errors import DamsoError


@dataclass
class State:
    config_path: Optional[Path] = None
    verbose: bool = False
    json: bool = False
    _config: object = field(default=None, repr=False)

    def config(self):
        """Load damso.toml once; start the log file next to the state."""
        if self._config is None:
            from damso_ops import config as config_mod
            from damso_ops.console import setup_logging

            self._config = config_mod.load(self.config_path)
            setup_logging(self.verbose, self._config.state_dir / "logs" / "damso.log")
        return self._config


def click_exceptions() -> tuple[type, ...]:
    """ClickException as the installed typer raises it: its own vendored copy since typer 0.26,
    the click package's before; and the click package's too when something imported it (what
    nothing imported raises nothing: importing click here would cost every error 45 ms)."""
    found = [c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"]
    beside = sys.modules.get("click.exceptions")
    if beside is not None:
        found.append(beside.ClickException)
    return tuple(dict.fromkeys(found))


class DamsoGroup(TyperGroup):
    """The one exit path: a DamsoError or a usage error becomes one clear message and an exit code."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:  # the root's own options (damso --nosuch, --config without a value)
            return super().make_context(info_name, args, parent=parent, **extra)
        except click_exceptions() as exc:
            _click_error(None, exc)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except DamsoError as exc:
            if isinstance(ctx.obj, State) and ctx.obj.verbose:
                traceback.print_exc()
            _render_error(ctx, exc.message, exc.hint, exc.details, exc.data)
            raise typer.Exit(exc.exit_code) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except click_exceptions() as exc:
            _click_error(ctx, exc)
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            from damso_ops.aws import explain

            state = ctx.obj if isinstance(ctx.obj, State) else State()
            if state.verbose:
                traceback.print_exc()
            known = explain(exc) or _explain_os_error(exc)
            if known:
                _render_error(ctx, known.message, known.hint, None)
                raise typer.Exit(known.exit_code) from None
            _render_error(ctx, f"Internal error: {type(exc).__name__}: {exc}", "Run again with --verbose for the traceback." if not state.verbose else None, None)
            raise typer.Exit(70) from None


def _click_error(ctx, exc) -> None:
    """A usage error (unknown command or option, missing argument, value out of range): click's
    message first, then where the help is; exit 2. `damso` alone still shows the help."""
    if type(exc).__name__ == "NoArgsIsHelpError":
        raise exc
    where = getattr(exc, "ctx", None) or ctx
    hint = f"See '{where.command_path} --help'." if where is not None and where.command_path else None
    message = exc.format_message().strip()
    _render_error(ctx, message if message.endswith((".", "?", "!")) else message + ".", hint, None)
    raise typer.Exit(exc.exit_code) from None


def _explain_os_error(exc: Exception) -> DamsoError | None:
    """A file damso was pointed at that cannot be used (a folder, no permission): one sentence."""
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        return DamsoError(f"Cannot use {exc.filename}: {exc.strerror}.")
    return None


def _render_error(ctx, message: str, hint: str | None, details: str | None, data: dict | None = None) -> None:
    from rich.markup import escape

    from damso_ops.console import err, print_json
    from damso_ops.redact import redact

    obj = getattr(ctx, "obj", None)
    state = obj if isinstance(obj, State) else State()
    if state.json:
        print_json({"error": message, "hint": hint, "details": details, **(data or {})})
    console = err()
    console.print("[bold red]Error:[/] " + escape(redact(message) + (f" {redact(hint)}" if hint else "")), markup=True)
    if details:
        console.print(redact(details), markup=False)


app = typer.Typer(
    name="damso",
    cls=DamsoGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    help="From these commits to these containers, healthy, on AWS.\n\n"
    "damso build --ref v3 · damso doctor · damso --help for everything.",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"damso {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Optional[Path] = typer.Option(
        None, "--config", "-c", envvar="DAMSO_CONFIG", help="Path to damso.toml (default: searched upwards from here)."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show debug logs and tracebacks."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    ctx.obj = State(config_path=config, verbose=verbose)


def _diff(plan):
    import functools

    @functools.wraps(plan)
    def diff(*args, **kwargs):
        kwargs["full"] = True
        return plan(*args, **kwargs)

    return diff


def _register() -> None:
    from damso_ops.cli import build, deploy, dev, doctor, sandbox, secrets

    app.command("build", help=build.HELP, epilog=build.EPILOG)(build.build)
    app.command("deploy", help=deploy.DEPLOY_HELP, epilog=deploy.DEPLOY_EPILOG)(deploy.deploy)
    app.command("plan", help=deploy.PLAN_HELP)(deploy.plan)
    app.command("diff", help=deploy.PLAN_HELP + " Same as plan, with file diffs in full.")(_diff(deploy.plan))
    app.command("destroy", help=deploy.DESTROY_HELP)(deploy.destroy)
    from damso_ops.cli import init, render

    app.command("render", help=render.HELP, epilog=render.EPILOG)(render.render)
    app.command("init", help=init.HELP, epilog=init.EPILOG)(init.init)
    app.add_typer(secrets.app, name="secrets")
    app.add_typer(sandbox.app, name="sandbox")
    app.add_typer(dev.app, name="dev")
    from damso_ops.cli import livekit

    app.add_typer(livekit.app, name="livekit")
    app.command("doctor", help=doctor.HELP)(doctor.doctor)
    from damso_ops.cli import logs, operate

    app.command("status", help=operate.STATUS_HELP, epilog=operate.STATUS_EPILOG)(operate.status)
    app.command("releases", help=operate.RELEASES_HELP, epilog=operate.RELEASES_EPILOG)(operate.releases)
    app.command("rollback", help=operate.ROLLBACK_HELP, epilog=operate.ROLLBACK_EPILOG)(operate.rollback)
    app.command("logs", help=logs.LOGS_HELP, epilog=logs.LOGS_EPILOG)(logs.logs)
    app.command("unlock", help=operate.UNLOCK_HELP, epilog=operate.UNLOCK_EPILOG)(operate.unlock)
    from damso_ops.cli import remote

    app.command("exec", help=remote.HELP, epilog=remote.EPILOG)(remote.exec_command)


_register()


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
