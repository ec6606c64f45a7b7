"""Speed of damso build, measured side by side in one run on the same repositories and images.

(a) a no-op rebuild of every service of the example (damso.example.toml: its repositories
    and services, the v3 agent's and the dev agent's both) with damso vs the
    old way: delete the clones, clone every repository, build every image in sequence, push
    every image. Both use the same Docker engine, whose layer cache is warm for the old way
    too (its builds are cache hits: the old way at its fastest).
(b) fetching one commit (damso's fetch into an empty cache) vs a full clone, of a repository
    shaped like a real one: 3,000 commits editing source files of 2-40 KB over ~800 paths, and
    four 6 MB binary blobs (random bytes) added in old history and deleted later. Made once
    with git fast-import and cached under ${DAMSO_TEST_CACHE:-~/.cache/damso-tests}/git.
    Both ways use a file:// URL, so git runs upload-pack and transfers a pack (no hardlinks).
    Bytes transferred are counted exactly on upload-pack's output (server to client) by an
    upload-pack wrapper; the objects each way leaves on disk are shown too.
(c) a cold build of those images (a new commit in every repository) with --jobs 4 vs --jobs 1.
(d) a cold rebuild on an empty engine after a one-line change in one service, with the layer
    cache from the registry vs without, for the example's six services (bench/cache_bench.py).

Reuses the Docker engine that answers (else starts one) and starts a registry with password
auth; stops exactly what it started and removes the images it made. `--json FILE` also writes the figures as JSON;
`--only fetch` runs (b) alone (no Docker needed), `--only cache` runs (d) alone.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cache_bench  # noqa: E402  (bench/, next to this file)
from tests.support.gitrepos import add_commit, cached_history_repo, make_repo  # noqa: E402

EXAMPLE = ROOT / "damso.example.toml"
BUILD_ENV = "dev"  # web bakes this environment's settings in (env_build_args), in both ways
# Each image does some waiting, as real builds do on package downloads.
DOCKERFILE = (
    "FROM local/busybox:1\n{args}COPY . /src\n"
    'RUN ["/bin/busybox", "sh", "-c", "sleep 2; ls -R /src > /listing{echo}"]\n'
)
HISTORY = {"commits": 3000, "files": 800, "min_size": 2_000, "max_size": 40_000, "binaries": 4, "binary_size": 6 << 20}
ROUNDS = 3  # each fetch way is timed this often, alternately; the median counts
NOOP_ROUNDS = 3  # the no-op rebuild and the old way, alternately; the median counts


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def sh(*argv: str, cwd: Path | None = None, env: dict | None = None) -> None:
    subprocess.run(argv, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# ---- (a), (c): the example's services -----------------------------------------------------


def example_services() -> tuple[dict, dict[str, str]]:
    """(services as in damso.example.toml, the build args of BUILD_ENV)."""
    example = tomllib.loads(EXAMPLE.read_text())
    return example["services"], example["environments"][BUILD_ENV].get("build_args", {})


def dockerfile(args: list[str]) -> str:
    return DOCKERFILE.format(
        args="".join(f"ARG {a}\n" for a in args),
        echo="".join(f"; echo ${a} >> /settings" for a in args),
    )


def repo_files(services: dict, make_dockerfile=dockerfile) -> dict[str, dict[str, str]]:
    """repository → its files: a Dockerfile where each of its services builds, and some source."""
    files: dict[str, dict[str, str]] = {}
    for name, svc in services.items():
        context = svc.get("context", ".")
        prefix = "" if context == "." else f"{context}/"
        repo = files.setdefault(svc["repo"], {"README.md": f"# {svc['repo']}\n"})
        repo[prefix + svc.get("dockerfile", "Dockerfile")] = make_dockerfile(svc.get("env_build_args", []))
        repo[f"{prefix}src/{name}.py"] = "".join(f"def handler_{i}(event):\n    return {i}\n\n" for i in range(200))
    return files


def write_config(project: Path, registry: str, urls: dict[str, str]) -> None:
    """damso.example.toml as it is, with the registry and repository URLs pointed here and every
    repository's default_ref main."""
    section, lines = "", []
    for line in EXAMPLE.read_text().splitlines():
        header = re.match(r"^\[([^\]]+)\]", line)
        if header:
            section = header[1]
        if section == "registry" and re.match(r"^host\s*=", line):
            line = f'host = "{registry}"'
        elif section == "registry" and re.match(r"^namespace\s*=", line):
            line = 'namespace = "bench"'
        elif section.startswith("repositories.") and re.match(r"^url\s*=", line):
            line = f'url = "{urls[section.split(".", 1)[1]]}"'
        elif section.startswith("repositories.") and re.match(r"^default_ref\s*=", line):
            line = 'default_ref = "main"'  # the branch the bench commits to (the example names v3 and dev)
        lines.append(line)
    text = "\n".join(lines) + "\n"
    parsed = tomllib.loads(text)
    assert parsed["registry"]["host"] == registry
    assert {n: r["url"] for n, r in parsed["repositories"].items()} == urls
    (project / "damso.toml").write_text(text)


def build_benches(work: Path) -> dict:
    from tests.support.daemons import Dockerd, Registry
    from tests.support.images import ensure_busybox_image, remove_images

    services, build_args = example_services()
    with Dockerd() as engine, Registry() as registry:
        import docker

        client = docker.DockerClient(base_url=engine.host, timeout=600)
        ensure_busybox_image(client)
        repos = {name: make_repo(work / "git", name, commits=5, files=files)
                 for name, files in repo_files(services).items()}  # fmt: skip
        project = work / "project"
        project.mkdir()
        write_config(project, registry.host, {name: f"file://{path}" for name, path in repos.items()})
        env = {**os.environ, "DOCKER_HOST": engine.host, "GHCR_USERNAME": registry.username,
               "GHCR_TOKEN": registry.password, "DAMSO_CACHE_DIR": str(work / "cache"), "CI": "1"}  # fmt: skip

        def damso(*args: str) -> dict:
            out = subprocess.run([sys.executable, "-m", "damso_ops", "build", "--env", BUILD_ENV, "--json", *args],
                                 cwd=project, env=env, capture_output=True, text=True, check=False)  # fmt: skip
            if out.returncode != 0:
                raise SystemExit(f"damso build {' '.join(args)} failed:\n{out.stderr[-3000:]}")
            return json.loads(out.stdout)

        def statuses(manifest: dict) -> dict[str, int]:
            counts: dict[str, int] = {}
            for record in manifest["images"].values():
                counts[record["status"]] = counts.get(record["status"], 0) + 1
            return counts

        # (c) cold builds: a new commit in every repository makes every image new (COPY layer uncached).
        def new_commits(tag: str) -> None:
            for path in repos.values():
                add_commit(path, {"README.md": f"{tag}\n"}, tag)

        new_commits("cold-seq")
        start = time.perf_counter()
        cold_seq = damso("--jobs", "1")
        sequential = time.perf_counter() - start
        new_commits("cold-par")
        start = time.perf_counter()
        cold_par = damso("--jobs", "4")
        parallel = time.perf_counter() - start
        assert statuses(cold_seq) == statuses(cold_par) == {"built": len(services)}, (cold_seq, cold_par)

        # (a) nothing changed since the last build, vs the old way; alternately.
        auth = {"username": registry.username, "password": registry.password}

        parts: dict[str, list[float]] = {"clone": [], "build": [], "push": []}

        def old_way() -> None:
            start = time.perf_counter()
            clones = work / "repos"
            shutil.rmtree(clones, ignore_errors=True)  # rm -rf repos/ every time
            clones.mkdir()
            for name, path in repos.items():
                sh("git", "clone", "-q", f"file://{path}", str(clones / name))
            cloned = time.perf_counter()
            for svc in services.values():  # build every image, one after the other
                args = {a: build_args[a] for a in svc.get("env_build_args", [])}
                client.images.build(path=str(clones / svc["repo"] / svc.get("context", ".")),
                                    dockerfile=svc.get("dockerfile", "Dockerfile"), buildargs=args,
                                    tag=f"{registry.host}/bench/{svc['image']}:latest", rm=True)  # fmt: skip
            built = time.perf_counter()
            for svc in services.values():  # push every image
                for _ in client.api.push(f"{registry.host}/bench/{svc['image']}", "latest", auth_config=auth,
                                         stream=True):  # fmt: skip
                    pass
            parts["clone"].append(cloned - start)
            parts["build"].append(built - cloned)
            parts["push"].append(time.perf_counter() - built)

        noops, olds = [], []
        for _ in range(NOOP_ROUNDS):
            start = time.perf_counter()
            noop = damso("--jobs", "4")
            noops.append(time.perf_counter() - start)
            assert statuses(noop) == {"skipped": len(services)}, noop
            olds.append(timed(old_way))
        remove_images(client, f"{registry.host}/bench/")  # the engine is shared: leave none of this run's images
    return {
        "services": len(services), "repositories": len(repos),
        "noop_s": statistics.median(noops), "old_s": statistics.median(olds), "noop_runs": noops, "old_runs": olds,
        "old_parts": {k: statistics.median(v) for k, v in parts.items()},
        "cold_par_s": parallel, "cold_seq_s": sequential,
    }  # fmt: skip


# ---- (b): one commit vs a full clone ------------------------------------------------------

COUNTING_UPLOAD_PACK = """#!/bin/sh
# git upload-pack, its output (the bytes sent to the client) counted by dd on the way.
git upload-pack "$@" | dd bs=65536 2>>"$DAMSO_BENCH_BYTES"
"""


def cpu_seconds() -> float:
    """CPU time of this process and of every child it waited for (git's own children included)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def disk_bytes(git_dir: Path) -> int:
    return sum(p.stat().st_size for p in (git_dir / "objects").rglob("*") if p.is_file())


def fetch_bench(work: Path) -> dict:
    from damso_ops.images import sources

    start = time.perf_counter()
    big = cached_history_repo("history", **HISTORY)
    made = time.perf_counter() - start
    head = subprocess.run(["git", "-C", str(big), "rev-parse", "main"], capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip
    url = f"file://{big}"
    resolved = sources.Resolved("history", url, "main", head, "branch")
    runs = 0

    def damso_way() -> Path:
        nonlocal runs
        runs += 1
        return sources.checkout(resolved, work / f"fetch-cache-{runs}")

    def full_clone(*extra: str) -> Path:
        nonlocal runs
        runs += 1
        target = work / f"clone-{runs}"
        sh("git", "clone", "-q", *extra, url, str(target))
        return target

    times: dict[str, list[float]] = {"damso": [], "clone": []}
    cpu: dict[str, list[float]] = {"damso": [], "clone": []}
    for _ in range(ROUNDS):
        for way, fn in (("damso", damso_way), ("clone", full_clone)):
            before = cpu_seconds()
            times[way].append(timed(fn))
            cpu[way].append(cpu_seconds() - before)

    # Once more each through the counting upload-pack: the bytes that went over the transport.
    wrapper = work / "upload-pack"
    wrapper.write_text(COUNTING_UPLOAD_PACK)
    wrapper.chmod(0o755)
    counts = {way: work / f"bytes-{way}" for way in times}
    saved = {k: os.environ.get(k) for k in ("DAMSO_BENCH_BYTES", "GIT_CONFIG_COUNT", "GIT_CONFIG_KEY_0", "GIT_CONFIG_VALUE_0")}
    try:
        os.environ.update(DAMSO_BENCH_BYTES=str(counts["damso"]), GIT_CONFIG_COUNT="1",
                          GIT_CONFIG_KEY_0="remote.origin.uploadpack", GIT_CONFIG_VALUE_0=str(wrapper))  # fmt: skip
        damso_tree = damso_way()
        for key in ("GIT_CONFIG_COUNT", "GIT_CONFIG_KEY_0", "GIT_CONFIG_VALUE_0"):
            del os.environ[key]
        os.environ["DAMSO_BENCH_BYTES"] = str(counts["clone"])
        clone_tree = full_clone("--upload-pack", str(wrapper))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    sent = {way: sum(int(n) for n in re.findall(r"^(\d+) bytes", path.read_text(), re.MULTILINE)) for way, path in counts.items()}
    head_tree = subprocess.run(["git", "-C", str(big), "ls-tree", "-r", "-l", "main"], capture_output=True, text=True,
                               check=True).stdout.splitlines()  # fmt: skip
    return {
        "repo": str(big), "repo_made_s": made, "params": HISTORY,
        "commits": int(subprocess.run(["git", "-C", str(big), "rev-list", "--count", "main"], capture_output=True,
                                      text=True, check=True).stdout),
        "head_files": len(head_tree), "head_bytes": sum(int(line.split()[3]) for line in head_tree),
        "source_pack_bytes": sum(p.stat().st_size for p in (big / "objects" / "pack").glob("*.pack")),
        "damso_s": statistics.median(times["damso"]), "clone_s": statistics.median(times["clone"]),
        "damso_runs": times["damso"], "clone_runs": times["clone"],
        "damso_cpu_s": statistics.median(cpu["damso"]), "clone_cpu_s": statistics.median(cpu["clone"]),
        "damso_bytes": sent["damso"], "clone_bytes": sent["clone"],
        "damso_disk": disk_bytes(damso_tree / ".git"), "clone_disk": disk_bytes(clone_tree / ".git"),
    }  # fmt: skip


def mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    parser.add_argument("--only", choices=("build", "fetch", "cache"), help="run one part only")
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="damso-bench-"))
    started = time.perf_counter()
    figures: dict = {}
    try:
        if options.only in (None, "build"):
            figures["build"] = build_benches(work)
        if options.only in (None, "fetch"):
            figures["fetch"] = fetch_bench(work)
        if options.only in (None, "cache"):
            figures["cache"] = cache_bench.measure(work, example_services()[0], BUILD_ENV, write_config, repo_files)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print("damso build benchmark (seconds; lower is better)")
    if "build" in figures:
        b = figures["build"]
        print(f"(a) no-op rebuild, {b['services']} images from {b['repositories']} repositories (damso.example.toml), "
              f"median of {NOOP_ROUNDS} alternate runs each:")  # fmt: skip
        print(f"      damso build --jobs 4 {b['noop_s']:6.2f}   old way {b['old_s']:6.2f}   "
              f"old/damso = {b['old_s'] / b['noop_s']:5.1f}x")  # fmt: skip
        print(f"      (runs: damso {', '.join(f'{t:.2f}' for t in b['noop_runs'])}; "
              f"old way {', '.join(f'{t:.2f}' for t in b['old_runs'])})")  # fmt: skip
        o = b["old_parts"]
        print(f"      old way: clone {o['clone']:.2f} + build (layer cache warm) {o['build']:.2f} "
              f"+ push {o['push']:.2f}")  # fmt: skip
    if "fetch" in figures:
        f = figures["fetch"]
        print(f"(b) fetch 1 commit vs full clone, file:// URL, median of {ROUNDS} alternate runs each; repository: "
              f"{f['commits']} commits, {f['head_files']} files ({mb(f['head_bytes'])}) at the head, "
              f"{HISTORY['binaries']} x {HISTORY['binary_size'] >> 20} MiB random blobs in old history, "
              f"{mb(f['source_pack_bytes'])} packed (made or found in {f['repo_made_s']:.1f} s)")  # fmt: skip
        print(f"      time:  damso {f['damso_s']:6.2f}   full clone {f['clone_s']:6.2f}   "
              f"clone/damso = {f['clone_s'] / f['damso_s']:5.1f}x")  # fmt: skip
        print(f"      CPU (both ends, git and Python):  damso {f['damso_cpu_s']:5.2f} s   "
              f"full clone {f['clone_cpu_s']:5.2f} s")  # fmt: skip
        print(f"      bytes sent by upload-pack:  damso {mb(f['damso_bytes'])}   full clone {mb(f['clone_bytes'])}   "
              f"clone/damso = {f['clone_bytes'] / f['damso_bytes']:5.1f}x")  # fmt: skip
        print(f"      objects on disk afterwards (.git/objects):  damso {mb(f['damso_disk'])}   "
              f"full clone {mb(f['clone_disk'])}")  # fmt: skip
    if "build" in figures:
        b = figures["build"]
        print(f"(c) cold build, {b['services']} images:  --jobs 4 {b['cold_par_s']:6.2f}   "
              f"--jobs 1 {b['cold_seq_s']:6.2f}   seq/par = {b['cold_seq_s'] / b['cold_par_s']:5.1f}x")  # fmt: skip
    if "cache" in figures:
        cache_bench.report(figures["cache"])
    print(f"(build bench: {time.perf_counter() - started:.0f} s in all)")
    if options.json:
        options.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
