"""Resolve a repository ref to one commit, and fetch exactly that commit into a cache.

Nothing after resolve() is decided by a moving name: builds use the SHA.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from damso_ops.errors import CommandError, DamsoError, UsageError
from damso_ops.runner import Command, run

log = logging.getLogger("damso.sources")

FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
ABBREV_SHA = re.compile(r"^[0-9a-f]{4,39}$")
GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "LC_ALL": "C"}


@dataclass(frozen=True)
class Resolved:
    repo: str  # name in damso.toml
    url: str
    ref: str  # what the user asked for
    sha: str  # full commit SHA
    kind: str  # "tag" | "branch" | "commit"


# ---- commands (data) -------------------------------------------------------------


def git(*args: str, cwd: Path | None = None) -> Command:
    return Command(("git", *args), cwd=cwd, env=GIT_ENV)


def ls_remote(url: str) -> Command:
    return git("ls-remote", "--heads", "--tags", url)


def init_commands(url: str, worktree: Path) -> list[Command]:
    """A repository at worktree whose origin is url (new, or an existing cache)."""
    if not (worktree / ".git").is_dir():
        return [git("init", "-q", str(worktree)), git("remote", "add", "origin", url, cwd=worktree)]
    return [git("remote", "set-url", "origin", url, cwd=worktree)]


def fetch_commit_commands(url: str, sha: str, worktree: Path) -> list[Command]:
    """Commands that make `worktree` a clean checkout of exactly `sha`."""
    cmds = init_commands(url, worktree)
    cmds += [
        git("fetch", "-q", "--depth", "1", "--no-tags", "origin", sha, cwd=worktree),
        git("checkout", "-q", "--force", "--detach", sha, cwd=worktree),
        git("clean", "-q", "-ffdx", cwd=worktree),
    ]
    return cmds


def history_fetch(worktree: Path) -> Command:
    """Enough history (no blobs) to expand an abbreviated SHA."""
    return git(
        "fetch", "-q", "--filter=blob:none", "--no-tags", "origin",
        "+refs/heads/*:refs/damso/heads/*", "+refs/tags/*:refs/damso/tags/*",
        cwd=worktree,
    )  # fmt: skip


# ---- pure logic ------------------------------------------------------------------


def parse_ls_remote(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """(tags, branches): name → commit SHA; annotated tags are peeled to their commit."""
    tags: dict[str, str] = {}
    peeled: dict[str, str] = {}
    branches: dict[str, str] = {}
    for line in text.splitlines():
        if "\t" not in line:
            continue
        sha, name = line.split("\t", 1)
        if name.startswith("refs/heads/"):
            branches[name[len("refs/heads/") :]] = sha
        elif name.startswith("refs/tags/"):
            tag = name[len("refs/tags/") :]
            if tag.endswith("^{}"):
                peeled[tag[:-3]] = sha
            else:
                tags[tag] = sha
    tags.update(peeled)
    return tags, branches


def match_advertised(ref: str, tags: dict[str, str], branches: dict[str, str]) -> tuple[str, str] | None:
    """(sha, kind) when the ref is a tag, a branch or a full/abbreviated advertised SHA."""
    for prefix, table, kind in (("refs/tags/", tags, "tag"), ("refs/heads/", branches, "branch")):
        name = ref[len(prefix) :] if ref.startswith(prefix) else ref
        if name in table:
            return table[name], kind
    if FULL_SHA.match(ref):
        return ref, "commit"
    if ABBREV_SHA.match(ref):
        hits = {sha for sha in (*tags.values(), *branches.values()) if sha.startswith(ref)}
        if len(hits) == 1:
            return hits.pop(), "commit"
    return None


def nearest_names(ref: str, tags: dict[str, str], branches: dict[str, str], n: int = 5) -> list[str]:
    names = sorted(set(tags) | set(branches))
    close = difflib.get_close_matches(ref, names, n=n, cutoff=0.3)
    return close or names[:n]


def cache_path(root: Path, repo: str, url: str) -> Path:
    digest = hashlib.sha256(url.encode()).hexdigest()[:10]
    return root / "repos" / f"{repo}-{digest}"


# ---- effects ---------------------------------------------------------------------


def resolve(repo: str, url: str, ref: str, cache_root: Path) -> Resolved:
    """One full commit SHA for repo@ref, or a UsageError naming the nearest refs."""
    try:
        out = run(ls_remote(url)).output
    except CommandError as exc:
        raise DamsoError(
            f"Cannot list the refs of repository '{repo}' at {url}.",
            hint="Check the URL in [repositories] and your git credentials.",
            details=exc.output_tail,
        ) from None
    tags, branches = parse_ls_remote(out)
    found = match_advertised(ref, tags, branches)
    if found is None and ABBREV_SHA.match(ref):
        found = _expand_abbreviated(url, ref, cache_path(cache_root, repo, url))
    if found is None:
        near = nearest_names(ref, tags, branches)
        raise UsageError(
            f"Repository '{repo}' has no tag, branch or commit '{ref}'"
            + (f"; nearest: {', '.join(near)}." if near else " (it has no tags or branches)."),
        )
    sha, kind = found
    log.info("resolved %s@%s → %s (%s)", repo, ref, sha, kind)
    return Resolved(repo=repo, url=url, ref=ref, sha=sha, kind=kind)


def _expand_abbreviated(url: str, abbrev: str, worktree: Path) -> tuple[str, str] | None:
    worktree.mkdir(parents=True, exist_ok=True)
    for cmd in init_commands(url, worktree):
        run(cmd)
    run(history_fetch(worktree))
    result = run(git("rev-parse", "--verify", "--quiet", f"{abbrev}^{{commit}}", cwd=worktree), check=False)
    if result.ok and FULL_SHA.match(result.output.strip()):
        return result.output.strip(), "commit"
    if "ambiguous" in result.output:
        raise UsageError(f"Abbreviated commit '{abbrev}' is ambiguous; give more characters.")
    return None


def checkout(resolved: Resolved, cache_root: Path) -> Path:
    """A clean worktree at exactly resolved.sha, reusing the cache; re-fetched if corrupted."""
    worktree = cache_path(cache_root, resolved.repo, resolved.url)
    try:
        return _fetch_into(worktree, resolved)
    except (DamsoError, OSError, ValueError) as exc:
        log.warning("cache %s unusable (%s); fetching again from scratch", worktree, exc)
    shutil.rmtree(worktree, ignore_errors=True)
    try:
        return _fetch_into(worktree, resolved)
    except (DamsoError, OSError, ValueError) as exc:
        raise DamsoError(
            f"Cannot fetch commit {resolved.sha[:12]} of '{resolved.repo}' from {resolved.url}.",
            details=getattr(exc, "details", None) or str(exc),
        ) from None


def _fetch_into(worktree: Path, resolved: Resolved) -> Path:
    worktree.mkdir(parents=True, exist_ok=True)
    for cmd in fetch_commit_commands(resolved.url, resolved.sha, worktree):
        run(cmd)
    verify_checkout(worktree, resolved.sha)
    return worktree


def verify_checkout(worktree: Path, sha: str) -> None:
    """HEAD is exactly sha and nothing is modified or untracked."""
    import git as gitpython  # heavy: imported only when a checkout is inspected

    try:
        repo = gitpython.Repo(worktree)
        head = repo.head.commit.hexsha
        dirty = repo.is_dirty(untracked_files=True)
    except Exception as exc:  # gitpython raises many types for a broken repo
        raise ValueError(f"unreadable git repository: {exc}") from exc
    if head != sha:
        raise ValueError(f"HEAD is {head}, expected {sha}")
    if dirty:
        raise ValueError("the checkout has local changes")
