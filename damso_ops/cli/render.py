"""damso render: parse options, call damso_ops.deploy.preview, list what was written."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from damso_ops.cli.common import ENV_ARG, JSON_OPTION, not_empty

HELP = "Write every file a host of each role would get (compose, env, LiveKit config, user-data), without deploying."
EPILOG = """\
[bold]Examples[/]\n
  damso render prod                         every role of prod, under .damso/render/prod/<role>/\n
  damso render prod api --out /tmp/api      one role, into /tmp/api/api/\n
  damso render prod --no-state              offline: Terraform outputs as <stack.output> placeholders\n
  damso render prod --json                  the files written, as JSON\n
  docker compose -f .damso/render/prod/api/compose.yml config     check what would ship\n
Terraform outputs (${api.private_ip}, the artifact bucket) come from the environment's state
when it can be read, else they are <stack.output> placeholders. Images are pinned from the build
manifest; a service not built yet gets the tag 'not-built'. Secrets appear only as the SSM
parameters the host reads them from, never as values. Nothing in AWS is changed."""


def render(
    ctx: typer.Context,
    env: str = ENV_ARG,
    roles: Optional[List[str]] = typer.Argument(None, callback=not_empty, help="Roles to render (default: all of ENV's)."),
    out: Optional[str] = typer.Option(None, "--out", "-o", callback=not_empty, help="Folder to write ROLE/FILE into (default: .damso/render/ENV)."),
    build_manifest: Optional[Path] = typer.Option(None, "--build-manifest", help="Build manifest to pin images from (default: the latest)."),
    state: bool = typer.Option(True, "--state/--no-state", help="Read Terraform outputs from the environment's state when it can be reached."),
    json_out: bool = JSON_OPTION,
) -> None:
    from damso_ops.console import out as console_out, print_json
    from damso_ops.deploy import preview

    ctx.obj.json = json_out
    cfg = ctx.obj.config()
    result = preview.preview(cfg, env, roles or [], build_manifest=build_manifest, use_state=state)
    folder = Path(out) if out else preview.default_out(cfg, env)
    preview.write(result, folder)
    if json_out:
        print_json(result.to_dict(folder))
        return
    console = console_out()
    say = lambda text: console.print(text, markup=False, highlight=False)  # noqa: E731
    for r in result.roles:
        say(f"{r.role}: {folder / r.role}/ " + ", ".join(f.name for f in r.files))
        if r.not_built:
            say(f"  not built (image tag {preview.NOT_BUILT}): {', '.join(r.not_built)}; run 'damso build {' '.join(r.not_built)}'")
        if r.secrets:
            say(f"  secrets, names only (values from SSM on the host): {', '.join(r.secrets)}")
    o = result.outputs
    if o.from_state:
        say(f"Terraform outputs from state: {', '.join(o.from_state)}")
    if o.placeholders:
        say(f"Terraform outputs as <stack.output> placeholders: {', '.join(o.placeholders)} ({o.note})")
