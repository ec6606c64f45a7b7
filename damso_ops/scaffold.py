"""damso init: a first damso.toml, from a shipped example or from the project's repositories.

From repositories, each is fetched at one commit with the build's own git code
(build/sources.py: ls-remote, then only that commit into the cache), and every Dockerfile in
it becomes a service whose image is named after the repository (and the Dockerfile's folder);
each Dockerfile's ARGs are listed: those without a default become per-environment build args,
to be filled in. The text is returned; the caller writes it (write() never overwrites).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from damso_ops import config, paths, values
from damso_ops.images import sources
from damso_ops.images.jobs import RefRequest
from damso_ops.errors import UsageError

DEFAULT_REF = "main"
SKIP_DIRS = {".git", "node_modules", "vendor", ".venv", "venv", "__pycache__", "dist", "build", ".next", "target"}
MAX_DEPTH = 3  # Dockerfiles deeper than this are not looked for (a monorepo's services are near the top)
ARG_LINE = re.compile(r"^\s*ARG\s+(.+)$", re.IGNORECASE)
ARG_ITEM = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(=(.*))?$")
PREDEFINED_ARGS = {"HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY", "TARGETPLATFORM", "TARGETOS",
                   "TARGETARCH", "TARGETVARIANT", "BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT"}  # fmt: skip


@dataclass(frozen=True)
class BuildArg:
    name: str
    default: str | None  # None: the Dockerfile gives none, so each environment must


@dataclass(frozen=True)
class Dockerfile:
    context: str  # folder inside the repository ("." for the top)
    dockerfile: str  # path inside the context
    args: tuple[BuildArg, ...]


@dataclass(frozen=True)
class RepoScan:
    name: str
    url: str
    ref: str
    sha: str
    dockerfiles: tuple[Dockerfile, ...] = field(default_factory=tuple)


# ---- examples -------------------------------------------------------------------------


def example_text(name: str) -> str:
    if name not in paths.EXAMPLES:
        raise UsageError(f"--example {name!r} is not a shipped example (examples: {', '.join(sorted(paths.EXAMPLES))}).")
    return paths.example(name).read_text(encoding="utf-8")


# ---- reading repositories -------------------------------------------------------------


def repo_name(url: str) -> str:
    """The repository's name in damso.toml: the last part of its URL, without .git, lowercase."""
    last = re.split(r"[/:]", url.rstrip("/"))[-1]
    name = re.sub(r"[^a-z0-9._-]+", "-", last.removesuffix(".git").lower()).strip("-._")
    if not name:
        raise UsageError(f"--repo {url}: no repository name can be taken from this URL.")
    return name


def check_repos(urls: Sequence[str], ref_values: Sequence[str]) -> tuple[dict[str, str], RefRequest]:
    """name → URL and the refs, all checked before anything is fetched."""
    named: dict[str, str] = {}
    for url in urls:
        problem = values.git_url(url)
        if problem:
            raise UsageError(f"--repo {problem}.")
        name = repo_name(url)
        if name in named:
            raise UsageError(f"--repo {url} and --repo {named[name]} would both be repository '{name}'.")
        named[name] = url
    return named, RefRequest.parse(list(ref_values), list(named))


def dockerfile_args(text: str) -> tuple[BuildArg, ...]:
    """The ARGs a Dockerfile declares (first declaration of each name), continuation lines joined;
    Docker's predefined proxy and platform args are left out."""
    joined = re.sub(r"\\\r?\n", " ", text)
    found: dict[str, BuildArg] = {}
    for line in joined.splitlines():
        match = ARG_LINE.match(line)
        if not match:
            continue
        for item in match.group(1).split("#", 1)[0].split():
            m = ARG_ITEM.match(item)
            if m and m.group(1) not in found and m.group(1) not in PREDEFINED_ARGS:
                default = m.group(3)
                found[m.group(1)] = BuildArg(m.group(1), default.strip("\"'") if default is not None else None)
    return tuple(found.values())


def is_dockerfile(name: str) -> bool:
    return name == "Dockerfile" or name.startswith("Dockerfile.") or name.endswith(".Dockerfile")


def find_dockerfiles(worktree: Path) -> tuple[Dockerfile, ...]:
    """Every Dockerfile at most MAX_DEPTH folders down, top first; its folder is its context."""
    found = []
    for folder, dirs, files in os.walk(worktree):
        rel = Path(folder).relative_to(worktree)
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith(".") and len(rel.parts) < MAX_DEPTH)
        for name in sorted(f for f in files if is_dockerfile(f)):
            text = (Path(folder) / name).read_text(encoding="utf-8", errors="replace")
            found.append(Dockerfile(rel.as_posix() if rel.parts else ".", name, dockerfile_args(text)))
    return tuple(sorted(found, key=lambda d: (d.context != ".", d.context, d.dockerfile)))


def scan(named: dict[str, str], refs: RefRequest, cache_root: Path) -> list[RepoScan]:
    """Each repository at its ref: resolved to one commit, fetched, its Dockerfiles read."""
    result = []
    for name, url in named.items():
        resolved = sources.resolve(name, url, refs.for_repo(name, DEFAULT_REF), cache_root)
        worktree = sources.checkout(resolved, cache_root)
        result.append(RepoScan(name, url, resolved.ref, resolved.sha, find_dockerfiles(worktree)))
    return result


# ---- the skeleton ---------------------------------------------------------------------


def service_name(repo: str, d: Dockerfile) -> str:
    parts = [repo] + ([p for p in d.context.split("/") if p] if d.context != "." else [])
    stem = d.dockerfile.removeprefix("Dockerfile").removesuffix("Dockerfile").strip(".")
    return re.sub(r"[^a-z0-9._-]+", "-", "-".join(parts + ([stem] if stem else [])).lower())


def registry_of(urls: Sequence[str]) -> tuple[str, str]:
    """(host, namespace): GitHub repositories push to ghcr.io under their owner."""
    for url in urls:
        m = re.match(r"^(?:https://|ssh://git@|git@)github\.com[/:]([A-Za-z0-9_.-]+)/", url)
        if m:
            return "ghcr.io", m.group(1).lower()
    return "ghcr.io", "your-namespace"


def q(value: str) -> str:
    """A TOML basic string."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def skeleton(scans: Sequence[RepoScan], project: str = "app", now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    host, namespace = registry_of([s.url for s in scans])
    lines = [
        f"# damso.toml written by `damso init` on {now:%Y-%m-%d} from {len(scans)} repositor{'y' if len(scans) == 1 else 'ies'}.",
        "# Each Dockerfile found became a service; review the names, then add roles (see below).",
        "# Secrets never go in this file: roles list their names; values live in SSM.",
        "",
        "[project]",
        f"name = {q(project)}",
        "",
        "[registry]",
        f"host = {q(host)}",
        f"namespace = {q(namespace)}" + ("   # set: where images are pushed" if namespace == "your-namespace" else ""),
        'username_env = "GHCR_USERNAME"',
        'password_env = "GHCR_TOKEN"   # a token that may push images',
        "",
    ]
    needed: dict[str, str] = {}  # build arg without a default → the service that needs it
    for s in scans:
        lines += [f"[repositories.{s.name}]", f"url = {q(s.url)}",
                  f"default_ref = {q(s.ref)}   # commit {s.sha[:12]} when damso init read it", ""]  # fmt: skip
        if not s.dockerfiles:
            lines += [f"# No Dockerfile was found in {s.name} at {s.ref}: add its [services.*] by hand.", ""]
        for d in s.dockerfiles:
            name = service_name(s.name, d)
            lines += [f"[services.{name}]", f"repo = {q(s.name)}", f"image = {q(name)}"]
            if d.context != ".":
                lines.append(f"context = {q(d.context)}")
            if d.dockerfile != "Dockerfile":
                lines.append(f"dockerfile = {q(d.dockerfile)}")
            without = [a.name for a in d.args if a.default is None]
            if without:
                lines.append("# ARGs without a default in the Dockerfile: each environment sets them (build_args).")
                lines.append("env_build_args = [" + ", ".join(q(a) for a in without) + "]")
                needed.update({a: name for a in without if a not in needed})
            for a in d.args:
                if a.default is not None:
                    lines.append(f"# build_args = {{ {a.name} = {q(a.default)} }}   # the Dockerfile's default; set to change it")
            lines.append("")
    lines += [
        "[environments.prod]",
        'region = "ap-northeast-2"',
        "",
    ]
    if needed:
        lines.append("[environments.prod.build_args]")
        lines += [f"{a} = \"\"   # set: ARG of {svc}, no default" for a, svc in needed.items()]
        lines.append("")
    lines += [
        "# A role is one kind of host: the services it runs and its compose template",
        "# (templates/compose/<role>.yml.j2 next to this file). See docs/deploy.md, and",
        "# `damso init --example damso` for a whole system.",
        "# [environments.prod.roles.NAME]",
        '# instance_type = "t3.small"',
        "# services = [\"SERVICE\"]",
        "# secrets = [\"REGISTRY_USERNAME\", \"REGISTRY_PASSWORD\"]",
        "# env = { PORT = \"8080\" }",
        "",
    ]
    return "\n".join(lines)


def project_name(folder: Path) -> str:
    name = re.sub(r"[^a-z0-9._-]+", "-", folder.name.lower()).strip("-._")
    return name if re.match(config.NAME_PATTERN, name) else "app"


# ---- writing --------------------------------------------------------------------------


def check_target(path: Path) -> None:
    if path.exists() or path.is_symlink():
        raise UsageError(f"{path} already exists; damso init never overwrites it (move it away or pass --config OTHER.toml).")
    if not path.parent.is_dir():
        raise UsageError(f"The folder {path.parent} does not exist.")


def write(path: Path, text: str) -> None:
    """Write text to path, which must not exist (checked again at the moment of creation)."""
    check_target(path)
    config.parse(text, path)  # what damso init writes, damso reads
    try:
        with open(path, "x", encoding="utf-8") as fh:
            fh.write(text)
    except FileExistsError:
        raise UsageError(f"{path} already exists; damso init never overwrites it.") from None
