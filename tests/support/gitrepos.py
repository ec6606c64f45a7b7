"""Real git repositories with history, tags and branches, made by plain git."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from tests.support.daemons import CACHE

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


# ---- a repository shaped like a real one, for the fetch bench ----------------------------

HISTORY_REPO_VERSION = 1  # bump when make_history_repo writes different history for the same parameters


def history_repo_cache() -> Path:
    return CACHE / "git"


SYLLABLES = ("ba", "co", "de", "fi", "go", "hu", "ja", "ke", "li", "mo", "nu", "pa", "qui", "ro", "sa", "te",
             "vi", "wo", "xa", "ze", "en", "an", "or", "st", "tr", "ch", "sh", "th")  # fmt: skip


def _source_file(rng, words: list[str], size: int) -> tuple[list[str], list[str]]:
    """(vocabulary, lines) of a file that looks, and compresses (about 3.5x with zlib, as real
    code does), like source code: indented statements over a few dozen identifiers of its own."""
    vocabulary = rng.sample(words, rng.randint(30, 90))
    lines: list[str] = []
    total = 0
    while total < size:
        lines.append(_source_line(rng, vocabulary))
        total += len(lines[-1]) + 1
    return vocabulary, lines


def _source_line(rng, v: list[str]) -> str:
    indent = "    " * rng.choice((0, 1, 1, 2, 2, 2, 3))
    k = rng.random()
    p = rng.choice
    if k < 0.08:
        return f"{indent}def {p(v)}_{p(v)}(self, {p(v)}, {p(v)}=None):"
    if k < 0.14:
        return f'{indent}"""{p(v).capitalize()} the {p(v)} of {p(v)} {p(v)}."""'
    if k < 0.22:
        return f"{indent}if {p(v)}.{p(v)} is not None and {p(v)} > {rng.randint(0, 16)}:"
    if k < 0.28:
        return f"{indent}return self.{p(v)}({p(v)}, {p(v)})"
    if k < 0.34:
        return ""
    if k < 0.40:
        return f"{indent}for {p(v)} in self.{p(v)}:"
    if k < 0.44:
        return f'{indent}raise {p(v).capitalize()}Error(f"{p(v)} {{{p(v)}}} is not {p(v)}")'
    return f"{indent}{p(v)} = self.{p(v)}.{p(v)}({p(v)}, {p(v)}={p(v)})"


def make_history_repo(
    root: Path,
    name: str,
    *,
    commits: int = 3000,
    files: int = 800,
    min_size: int = 2_000,
    max_size: int = 40_000,
    binaries: int = 4,
    binary_size: int = 6 << 20,
    seed: int = 14,
) -> Path:
    """A bare repo root/name.git with the shape of a real project's, written with git fast-import.

    `files` source files of min_size..max_size bytes (most small, a few large) spread over
    nested folders; each of `commits` commits edits 1-4 of them (a few lines changed, a block
    added or removed) and now and then adds a file. `binaries` blobs of `binary_size` random
    bytes (they do not compress) are added in the first tenth of history and removed at about a
    third of it: a full clone carries them, the newest commit does not. Deterministic for its
    parameters; repacked like a server's repository (git repack -adf)."""
    import random

    rng = random.Random(seed)
    words = ["".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))) for _ in range(3000)]
    folders = [
        "/".join(rng.choice(words) for _ in range(rng.randint(1, 3))) for _ in range(max(1, files // 15))
    ]
    exts = (".py", ".ts", ".tsx", ".go", ".rs", ".sql", ".md", ".yaml")

    def new_path() -> str:
        return f"{rng.choice(folders)}/{rng.choice(words)}_{rng.choice(words)}{rng.choice(exts)}"

    def size() -> int:  # most files small, a few large, as in real code
        return int(min(max_size, max(min_size, rng.lognormvariate(8.9, 0.7))))

    tree: dict[str, list[str]] = {}
    vocabulary: dict[str, list[str]] = {}
    while len(tree) < files:
        path = new_path()
        vocabulary[path], tree[path] = _source_file(rng, words, size())
    paths = sorted(tree)
    binary_add = {max(2, (i + 1) * commits // (10 * (binaries + 1))): i for i in range(binaries)}
    binary_drop = commits // 3

    bare = root / f"{name}.git"
    git("init", "-q", "--bare", "-b", "main", str(bare))
    proc = subprocess.Popen(["git", "fast-import", "--quiet", "--done"], cwd=bare, stdin=subprocess.PIPE,
                            env={**os.environ, **ENV})  # fmt: skip
    assert proc.stdin is not None
    out = proc.stdin

    def modify(path: str, data: bytes) -> None:
        out.write(f"M 644 inline {path}\ndata {len(data)}\n".encode() + data + b"\n")

    for number in range(1, commits + 1):
        msg = f"{rng.choice(words)} {rng.choice(words)}: {' '.join(rng.choice(words) for _ in range(6))}".encode()
        out.write(b"commit refs/heads/main\n")
        out.write(f"committer Test <test@example.invalid> {1600000000 + number * 3600} +0000\n".encode())
        out.write(b"data %d\n%s\n" % (len(msg), msg))
        if number == 1:
            changed = paths
        else:
            changed = rng.sample(paths, rng.randint(1, 4))
            for path in changed:
                lines = tree[path]
                for _ in range(rng.randint(1, 6)):  # edit a few lines
                    lines[rng.randrange(len(lines))] = _source_line(rng, vocabulary[path])
                roll = rng.random()
                at = rng.randrange(len(lines))
                if roll < 0.25 and sum(map(len, lines)) < max_size:  # add a block
                    lines[at:at] = [_source_line(rng, vocabulary[path]) for _ in range(rng.randint(5, 40))]
                elif roll < 0.35 and len(lines) > 60:  # remove one
                    del lines[at : at + rng.randint(5, 30)]
            if rng.random() < 0.03:
                path = new_path()
                if path not in tree:
                    vocabulary[path], tree[path] = _source_file(rng, words, size())
                    paths.append(path)
                    changed = [*changed, path]
        for path in changed:
            modify(path, ("\n".join(tree[path]) + "\n").encode())
        if number in binary_add:
            modify(f"assets/model-{binary_add[number]}.bin", rng.randbytes(binary_size))
        if number == binary_drop:
            for i in range(binaries):
                out.write(f"D assets/model-{i}.bin\n".encode())
        out.write(b"\n")
    out.write(b"done\n")
    out.close()
    if proc.wait() != 0:
        raise RuntimeError(f"git fast-import failed for {bare}")
    git("tag", "-a", "v1", "-m", "v1", "main", cwd=bare)
    git("repack", "-a", "-d", "-f", "-q", "--window=10", "--depth=50", cwd=bare)
    git("prune-packed", cwd=bare)
    return bare


def cached_history_repo(name: str = "history", **params) -> Path:
    """make_history_repo(...) made once per parameters under ${DAMSO_TEST_CACHE:-~/.cache/damso-tests}/git;
    later calls return the same repository (read it, never write to it)."""
    import hashlib
    import json
    import shutil

    key = hashlib.sha256(json.dumps([HISTORY_REPO_VERSION, name, sorted(params.items())]).encode()).hexdigest()[:12]
    cache = history_repo_cache()
    bare = cache / f"{name}-{key}.git"
    if (bare / "damso-complete").exists():
        return bare
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-{key}-", dir=cache))
    try:
        made = make_history_repo(tmp, name, **params)
        (made / "damso-complete").write_text(json.dumps(params) + "\n")
        shutil.rmtree(bare, ignore_errors=True)
        made.rename(bare)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return bare
