"""damso build: parse options, run the build, render the outcome."""

from __future__ import annotations

import os
from typing import List, Optional

import typer

from damso_ops.cli.common import not_empty

HELP = "Build images for services at a git ref, push them, record commit → digest."
EPILOG = """\
[bold]Examples[/]\n
  damso build --ref v3                           every service, repos at tag v3\n
  damso build --ref v3 api web                   only these services\n
  damso build --ref ops-api=2383efc --ref ops-web=main   per-repository refs\n
  damso build --ref main --env prod web          web bakes prod settings in\n
  damso build --ref v3 --json > build.json       the manifest, for scripts\n
  damso build --ref v3 --force --no-cache        rebuild every layer\n
Credentials come from the registry's username/password variables in damso.toml
(GHCR_USERNAME / GHCR_TOKEN by default) or from 'docker login'.\n
Each build takes unchanged layers from the service's previous image in the registry (named by .damso/builds/latest.json); see docs/build.md."""


def _default_jobs() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def build(
    ctx: typer.Context,
    services: Optional[List[str]] = typer.Argument(None, callback=not_empty, help="Services to build (default: all)."),
    ref: List[str] = typer.Option(
        [], "--ref", "-r", callback=not_empty, help="REF for every repository, or REPO=REF for one (repeatable). Default: each repository's default_ref."
    ),
    env: Optional[str] = typer.Option(None, "--env", "-e", callback=not_empty, help="Environment whose build args are baked in (for services that need it)."),
    push: bool = typer.Option(True, "--push/--no-push", help="Push to the registry (and skip images already there)."),
    force: bool = typer.Option(False, "--force", help="Rebuild even if the registry already has the image."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Build every layer again: no layers from the previous image in the registry, nor from the engine."),
    platform: str = typer.Option("linux/amd64", "--platform", callback=not_empty, help="Target platform."),
    jobs: int = typer.Option(_default_jobs(), "--jobs", "-j", min=1, max=32, help="Services built at once."),
    json_out: bool = typer.Option(False, "--json", help="Print the build manifest as JSON."),
) -> None:
    from damso_ops import paths
    from damso_ops.images import builder, jobs as build_jobs, pipeline as build_lib
    from damso_ops.images.engine import connect
    from damso_ops.console import print_json

    state = ctx.obj
    state.json = json_out
    cfg = state.config()
    # Validate everything that needs no engine (services, refs, --env, credentials) before connecting to one.
    build_jobs.check_request(cfg, services or [], ref, env, platform)
    if push:
        builder.credentials(cfg.registry)
    client = connect()
    with Progress(verbose=state.verbose) as progress:
        result = build_lib.build(
            cfg,
            client,
            service_names=services or [],
            ref_values=ref,
            env=env,
            push=push,
            force=force,
            platform=platform,
            jobs=jobs,
            cache_root=paths.cache_dir(),
            on_event=progress.event,
            no_cache=no_cache,
        )
    if json_out:
        data = result.manifest.to_dict()
        data["path"] = str(result.manifest_path)
        data["failures"] = {o.service: {"error": o.error, "log_tail": o.log_tail} for o in result.failed}
        print_json(data)
    else:
        _render(result)
    if result.failed:
        raise typer.Exit(1)


def _render(result) -> None:
    from rich.table import Table

    from damso_ops.console import err, out

    table = Table(title=f"Build {result.manifest.id}", title_justify="left")
    for column in ("service", "result", "commit", "image", "digest", "time"):
        table.add_column(column)
    for o in result.outcomes:
        rec = result.manifest.images[o.service]
        style = {"built": "green", "skipped": "cyan", "failed": "red"}[o.status]
        table.add_row(o.service, f"[{style}]{o.status}[/]", rec.commit[:12], f"{rec.image}:{rec.tags[0]}",
                      (o.digest or "-")[:19], f"{o.seconds:.1f}s")  # fmt: skip
    out().print(table)
    console = err()
    for o in result.failed:
        console.print(f"[red]✗ {o.service}[/]: {o.error}", markup=True)
        if o.log_tail:
            console.print("  " + o.log_tail.replace("\n", "\n  "), markup=False)
    out().print(f"Manifest: {result.manifest_path}")


class Progress:
    """Live per-service status on a TTY; one plain line per step otherwise."""

    def __init__(self, verbose: bool):
        from damso_ops.console import err, fancy

        self.verbose = verbose
        self.console = err()
        self.fancy = fancy() and not verbose
        self.rows: dict[str, tuple[str, str]] = {}
        self.live = None

    def __enter__(self):
        if self.fancy:
            from rich.live import Live

            self.live = Live(self._table(), console=self.console, refresh_per_second=8, transient=True)
            self.live.__enter__()
        return self

    def __exit__(self, *exc):
        if self.live:
            self.live.__exit__(*exc)

    def _table(self):
        from rich.table import Table

        table = Table.grid(padding=(0, 2))
        for service, (phase, message) in self.rows.items():
            table.add_row(f"[bold]{service}[/]", phase, message[-80:])
        return table

    def event(self, service: str, phase: str, message: str) -> None:
        if self.live:
            key = "damso" if service == "*" else service
            self.rows[key] = (phase, message)
            self.live.update(self._table())
            return
        if phase == "log" and not self.verbose:
            return
        prefix = "" if service == "*" else f"[{service}] "
        self.console.print(f"{prefix}{phase}: {message}", markup=False, highlight=False)
