"""Speed of damso build, measured side by side in one run on the same repos and images.

(a) a no-op rebuild with damso vs the old way (delete clones, clone, build all, push all)
(b) fetching one commit of a repository with thousands of commits vs a full clone
(c) a cold parallel build vs a cold sequential one (--jobs 4 vs --jobs 1)

Starts a Docker engine if none answers and a registry with password auth; stops
exactly what it started. Prints seconds and ratios.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.daemons import Dockerd, Registry  # noqa: E402
from tests.support.gitrepos import add_commit, make_big_repo, make_repo  # noqa: E402
from tests.support.images import ensure_busybox_image  # noqa: E402

SERVICES = {  # service → (repo, context)
    "api": ("app", "."),
    "worker": ("app", "worker"),
    "web": ("site", "."),
    "mcp": ("tools", "."),
}
# Each image does some waiting, as real builds do on package downloads.
DOCKERFILE = 'FROM local/busybox:1\nCOPY . /src\nRUN ["/bin/busybox", "sh", "-c", "sleep 2; ls -R /src > /listing"]\n'


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def sh(*argv: str, cwd: Path | None = None, env: dict | None = None) -> None:
    subprocess.run(argv, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def write_config(project: Path, registry: str, repos: dict[str, Path]) -> None:
    lines = [f'[registry]\nhost = "{registry}"\nnamespace = "bench"\n']
    lines += [f'[repositories.{name}]\nurl = "file://{path}"\n' for name, path in repos.items()]
    lines += [f'[services.{s}]\nrepo = "{r}"\nimage = "{s}"\ncontext = "{c}"\n' for s, (r, c) in SERVICES.items()]
    (project / "damso.toml").write_text("\n".join(lines))


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="damso-bench-"))
    with Dockerd() as engine, Registry() as registry:
        import docker

        client = docker.DockerClient(base_url=engine.host, timeout=600)
        ensure_busybox_image(client)
        files = {"Dockerfile": DOCKERFILE, "worker/Dockerfile": DOCKERFILE, "README": "bench\n"}
        repos = {name: make_repo(work / "git", name, commits=20, files=files) for name in ("app", "site", "tools")}
        project = work / "project"
        project.mkdir()
        write_config(project, registry.host, repos)
        env = {**os.environ, "DOCKER_HOST": engine.host, "GHCR_USERNAME": registry.username,
               "GHCR_TOKEN": registry.password, "DAMSO_CACHE_DIR": str(work / "cache"), "CI": "1"}  # fmt: skip

        def damso(*args: str) -> None:
            sh(sys.executable, "-m", "damso_ops", *args, cwd=project, env=env)

        # (c) cold builds: a new commit in every repo makes every image new (and its COPY layer uncached).
        def new_commits(tag: str) -> None:
            for path in repos.values():
                add_commit(path, {"README": f"{tag}\n"}, tag)

        new_commits("cold-seq")
        sequential = timed(lambda: damso("build", "--jobs", "1"))
        new_commits("cold-par")
        parallel = timed(lambda: damso("build", "--jobs", "4"))

        # (a) nothing changed since the last build.
        noop = timed(lambda: damso("build", "--jobs", "4"))

        def old_way() -> None:
            clones = work / "repos"
            shutil.rmtree(clones, ignore_errors=True)  # rm -rf repos/ every time
            clones.mkdir()
            for name, path in repos.items():
                sh("git", "clone", "-q", f"file://{path}", str(clones / name))
            for service, (repo, context) in SERVICES.items():
                image = f"{registry.host}/bench/{service}:latest"
                client.images.build(path=str(clones / repo / context), tag=image, rm=True)
                auth = {"username": registry.username, "password": registry.password}
                for _ in client.api.push(f"{registry.host}/bench/{service}", "latest", auth_config=auth, stream=True):
                    pass

        old = timed(old_way)

        # (b) one commit of a long history vs a full clone.
        big = make_big_repo(work / "git", "big", commits=3000)
        head = subprocess.run(["git", "-C", str(big), "rev-parse", "main"], capture_output=True, text=True).stdout.strip()
        from damso_ops.build import sources
        resolved = sources.Resolved("big", f"file://{big}", "main", head, "branch")
        one_commit = timed(lambda: sources.checkout(resolved, work / "fetch-cache"))
        full_clone = timed(lambda: sh("git", "clone", "-q", f"file://{big}", str(work / "big-clone")))

    print("damso build benchmark (seconds; lower is better)")
    print(f"(a) no-op rebuild, 4 images:     damso {noop:6.2f}   old way {old:6.2f}   old/damso = {old / noop:5.1f}x")
    print(f"(b) fetch 1 of 3000 commits:     damso {one_commit:6.2f}   full clone {full_clone:6.2f}   clone/damso = {full_clone / one_commit:5.1f}x")
    print(f"(c) cold build, 4 images:        --jobs 4 {parallel:6.2f}   --jobs 1 {sequential:6.2f}   seq/par = {sequential / parallel:5.1f}x")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
