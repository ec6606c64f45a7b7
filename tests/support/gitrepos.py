"""Real git repositories with history, tags and branches, made by plain git."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

ENV = {
    "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}  # fmt: skip


def git(*args: str, cwd: Path | None = None, input: bytes | None = None) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **ENV}, input=input, capture_output=True, check=True)
    return out.stdout.decode().strip()


def _write(work: Path, files: Mapping[str, str]) -> None:
    for name, content in files.items():
        path = work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


def make_repo(
    root: Path,
    name: str,
    commits: int = 3,
    tags: Mapping[str, int] | None = None,
    files: Mapping[str, str] | None = None,
) -> Path:
    """A bare repo root/name.git on branch main: `files` in the first commit, then `commits - 1`
    more commits each changing history.txt. tags: name → 1-based commit number (annotated)."""
    bare = root / f"{name}.git"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        git("init", "-q", "-b", "main", str(work))
        for number in range(1, commits + 1):
            _write(work, dict(files or {}) if number == 1 else {})
            _write(work, {"history.txt": f"commit {number}\n"})
            git("add", "-A", cwd=work)
            git("commit", "-q", "-m", f"commit {number}", cwd=work)
            for tag, at in (tags or {}).items():
                if at == number:
                    git("tag", "-a", tag, "-m", f"release {tag}", cwd=work)
        git("clone", "-q", "--bare", str(work), str(bare))
    return bare


def add_commit(bare: Path, files: Mapping[str, str], message: str, branch: str = "main", tag: str | None = None) -> str:
    """Push one more commit (on a new or existing branch, optionally lightweight-tagged)."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "w"
        git("clone", "-q", str(bare), str(work))
        if branch != "main":
            git("checkout", "-q", "-B", branch, cwd=work)
        _write(work, files)
        git("add", "-A", cwd=work)
        git("commit", "-q", "-m", message, cwd=work)
        if tag:
            git("tag", tag, cwd=work)
        git("push", "-q", "origin", f"HEAD:refs/heads/{branch}", *([f"refs/tags/{tag}"] if tag else []), cwd=work)
        return git("rev-parse", "HEAD", cwd=work)


def make_big_repo(root: Path, name: str, commits: int = 3000, files: Mapping[str, str] | None = None,
                  blob_size: int = 2048) -> Path:  # fmt: skip
    """A bare repo with many commits, written with git fast-import (seconds, not minutes)."""
    bare = root / f"{name}.git"
    git("init", "-q", "--bare", "-b", "main", str(bare))
    stream = bytearray()
    base = dict(files or {})
    for number in range(1, commits + 1):
        stream += b"commit refs/heads/main\n"
        stream += f"committer Test <test@example.invalid> {1700000000 + number} +0000\n".encode()
        msg = f"commit {number}".encode()
        stream += b"data %d\n%s\n" % (len(msg), msg)
        changes = dict(base) if number == 1 else {}
        # Each commit rewrites a few files, so history really is large.
        for k in range(3):
            changes[f"data/file{(number + k) % 200}.txt"] = (f"{number}-{k}\n" * (blob_size // 8))
        for path, content in changes.items():
            data = content.encode()
            stream += f"M 644 inline {path}\n".encode() + b"data %d\n" % len(data) + data + b"\n"
        stream += b"\n"
    git("fast-import", "--quiet", cwd=bare, input=bytes(stream))
    git("tag", "-a", "v1", "-m", "v1", "main", cwd=bare)
    return bare
