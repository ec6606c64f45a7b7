"""damso init: parse options, call damso_ops.scaffold, say what was written."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from damso_ops.cli.common import JSON_OPTION, not_empty

HELP = "Write a first, commented damso.toml: a shipped example, or a skeleton read from your repositories' Dockerfiles."
EPILOG = """\
[bold]Examples[/]\n
  damso init --example damso                the Damso system: 3 repositories, 7 images, prod and dev\n
  damso init --repo https://github.com/org/api.git --repo https://github.com/org/web.git\n
  damso init --repo URL --ref v3            every repository at tag v3 (default: main)\n
  damso init --repo URL1 --repo URL2 --ref api=dev   one repository at its own ref\n
  damso --config other.toml init --example damso     write another file than ./damso.toml\n
From repositories, each is fetched at one commit; every Dockerfile becomes a service, and
its ARGs without a default become per-environment build args to fill in. An existing file
is never overwritten. Next: 'damso doctor', then 'damso render prod'."""


def init(
    ctx: typer.Context,
    example: Optional[str] = typer.Option(None, "--example", callback=not_empty, help="A shipped example: damso."),
    repo: List[str] = typer.Option([], "--repo", callback=not_empty, help="A git repository URL to read (repeatable)."),
    ref: List[str] = typer.Option(
        [], "--ref", "-r", callback=not_empty, help="REF for every repository, or NAME=REF for one (default: main)."
    ),
    json_out: bool = JSON_OPTION,
) -> None:
    from damso_ops import paths, scaffold
    from damso_ops.cli.common import print_result
    from damso_ops.config import CONFIG_NAME
    from damso_ops.errors import UsageError

    ctx.obj.json = json_out
    path = (ctx.obj.config_path or Path.cwd() / CONFIG_NAME).absolute()
    if example and repo:
        raise UsageError("Pass either --example or --repo, not both.")
    if ref and not repo:
        raise UsageError("--ref is for the repositories given with --repo.")
    if not example and not repo:
        raise UsageError("Pass --example damso (the Damso system) or --repo URL (your repositories).", hint="See 'damso init --help'.")
    text = scaffold.example_text(example) if example else None  # a wrong name is said first
    scaffold.check_target(path)
    if example:
        summary = {"file": str(path), "example": example}
    else:
        named, refs = scaffold.check_repos(repo, ref)
        scans = scaffold.scan(named, refs, paths.cache_dir())
        text = scaffold.skeleton(scans, scaffold.project_name(path.parent))
        summary = {"file": str(path), "repositories": {s.name: {"url": s.url, "ref": s.ref, "commit": s.sha,
                   "services": [scaffold.service_name(s.name, d) for d in s.dockerfiles]} for s in scans}}  # fmt: skip
    scaffold.write(path, text)
    lines = [f"Wrote {path}" + (f" (example {example})." if example else ".")]
    for name, r in summary.get("repositories", {}).items():
        lines.append(f"  {name} at {r['ref']} ({r['commit'][:12]}): " + (", ".join(r["services"]) or "no Dockerfile found"))
    lines.append("Next: 'damso doctor', then 'damso render prod' to see every file a host would get.")
    print_result(summary, json_out, "\n".join(lines))
