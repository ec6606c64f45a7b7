"""(d) Layer cache from the registry: a cold rebuild on an empty engine after a one-line change
in one service, with registry cache vs without, for the example's six services (api, web,
agent, stt, ollama, kma-mcp from damso.example.toml; the dev agent's four are left out).

Each image is shaped like a real one: its lock file is copied and its dependencies installed
(a step that waits DEPS_WAIT seconds, as package downloads do, and writes DEPS_MB of random
bytes, which the registry stores and a pull transfers), then its source is copied and built.
The one-line change is in agent's source; agent, stt, ollama and kma-mcp build from the same
repository, so all four are built again (api and web are found in the registry, both ways).

Before each timed build every image of the bench's registry is removed from the engine, with
its intermediate layers (a hosted CI runner's empty engine; the busybox base stays, as a
runner's base image pull is the same both ways). With cache: damso as it is, seeded from the
images the last build manifest names. Without: the same with no build manifest, so nothing
seeds the cache (damso before the layer cache). The two alternate, ROUNDS times each.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

SIX = ("api", "web", "agent", "stt", "ollama", "kma-mcp")
CHANGED = "agent"
DEPS_WAIT = 30  # seconds: a dependency install of a real service takes minutes
DEPS_MB = 40
ROUNDS = 3
STEP = 'RUN ["/bin/busybox", "sh", "-c", "{}"]\n'


def dockerfile(args: list[str]) -> str:
    return (
        "FROM local/busybox:1\n"
        + "".join(f"ARG {a}\n" for a in args)
        + "COPY deps.lock /app/deps.lock\n"
        + STEP.format(f"sleep {DEPS_WAIT}; /bin/busybox head -c {DEPS_MB}000000 /dev/urandom > /app/deps.bin")
        + "COPY src /app/src\n"
        + STEP.format("sleep 1; ls -R /app/src > /app/listing" + "".join(f"; echo ${a} >> /app/settings" for a in args))
    )


def source(version: int) -> str:
    """A service's source file; the one-line change edits its first line."""
    return f"VERSION = {version}\n" + "".join(f"def handler_{i}(event):\n    return {i}\n\n" for i in range(200))


def layered_files(services: dict, repo_files, nonce: str) -> dict[str, dict[str, str]]:
    """build_bench's repositories with this Dockerfile, a lock file per service and versioned
    source. The nonce in each lock file keeps any other run's layers (the engine is shared) from
    matching this run's steps."""
    files = repo_files(services, dockerfile)
    for name, svc in services.items():
        prefix = "" if svc.get("context", ".") == "." else f"{svc['context']}/"
        files[svc["repo"]].update({prefix + "deps.lock": f"{name}-deps==1.0  # bench run {nonce}\n",
                                   f"{prefix}src/{name}.py": source(0)})  # fmt: skip
    return files


def measure(work: Path, example: dict, build_env: str, write_config, repo_files) -> dict:
    """example: services as in damso.example.toml; write_config and repo_files: build_bench's."""
    import docker

    from tests.support.daemons import Dockerd, Registry
    from tests.support.gitrepos import add_commit, make_repo
    from tests.support.images import ensure_busybox_image, remove_images

    services = {name: example[name] for name in SIX}
    with Dockerd() as engine, Registry() as registry:
        client = docker.DockerClient(base_url=engine.host, timeout=600)
        ensure_busybox_image(client)
        repos = {name: make_repo(work / "cache-git", name, commits=2, files=files)
                 for name, files in layered_files(services, repo_files, secrets.token_hex(6)).items()}  # fmt: skip
        urls = {svc["repo"]: f"file://{repos[svc['repo']]}" for svc in example.values() if svc["repo"] in repos}
        urls.update({svc["repo"]: urls["ops-agent"] for svc in example.values() if svc["repo"] not in repos})  # unbuilt
        project = work / "cache-project"
        project.mkdir()
        write_config(project, registry.host, urls)
        env = {**os.environ, "DOCKER_HOST": engine.host, "GHCR_USERNAME": registry.username,
               "GHCR_TOKEN": registry.password, "DAMSO_CACHE_DIR": str(work / "cache-cache"), "CI": "1"}  # fmt: skip
        prefix = f"{registry.host}/bench/"
        latest = project / ".damso" / "builds" / "latest.json"

        def damso() -> tuple[float, dict, str]:
            start = time.perf_counter()
            out = subprocess.run([sys.executable, "-m", "damso_ops", "build", "--env", build_env, "--json",
                                  "--jobs", "4", *SIX], cwd=project, env=env, capture_output=True, text=True)  # fmt: skip
            took = time.perf_counter() - start
            if out.returncode != 0:
                raise SystemExit(f"damso build failed:\n{out.stderr[-3000:]}")
            return took, json.loads(out.stdout), out.stderr

        first_s, _, _ = damso()  # every image once: the registry has them, the manifest names them
        runs: dict[str, list[float]] = {"with": [], "without": []}
        cached: dict[str, list[int]] = {"with": [], "without": []}
        rebuilt: set[str] = set()
        change = 0
        for _ in range(ROUNDS):
            for way in ("with", "without"):
                change += 1
                add_commit(repos["ops-agent"], {f"src/{CHANGED}.py": source(change)}, f"one-line change {change}")
                remove_images(client, prefix)
                if way == "without":
                    latest.unlink()
                took, manifest, log = damso()
                built = {n for n, r in manifest["images"].items() if r["status"] == "built"}
                steps = [int(n) for n in re.findall(r"^\[[\w-]+\] built: .*; (\d+) steps? from cache$", log, re.MULTILINE)]
                assert len(steps) == len(built), log
                if way == "without" and sum(steps):
                    raise SystemExit(f"a build without registry cache took {sum(steps)} steps from cache:\n{log}")
                runs[way].append(took)
                cached[way].append(sum(steps))
                rebuilt |= built
        remove_images(client, prefix)
    with_s, without_s = statistics.median(runs["with"]), statistics.median(runs["without"])
    return {
        "services": len(SIX), "rebuilt": sorted(rebuilt), "first_s": first_s, "rounds": ROUNDS,
        "with_s": with_s, "without_s": without_s, "ratio": with_s / without_s,
        "with_runs": runs["with"], "without_runs": runs["without"],
        "cached_steps_with": cached["with"], "cached_steps_without": cached["without"],
        "deps_wait_s": DEPS_WAIT, "deps_mb": DEPS_MB,
    }  # fmt: skip


def report(c: dict) -> None:
    print(f"(d) cold rebuild on an empty engine after a one-line change in {CHANGED}, {c['services']} images "
          f"(rebuilt: {', '.join(c['rebuilt'])}; each installs dependencies: {c['deps_wait_s']} s, "
          f"{c['deps_mb']} MB), median of {c['rounds']} alternate runs each:")  # fmt: skip
    print(f"      with registry cache {c['with_s']:6.2f}   without {c['without_s']:6.2f}   "
          f"with/without = {c['ratio']:5.2f}x")  # fmt: skip
    print(f"      (runs: with {', '.join(f'{t:.2f}' for t in c['with_runs'])}; "
          f"without {', '.join(f'{t:.2f}' for t in c['without_runs'])}; steps from cache: "
          f"with {c['cached_steps_with']}, without {c['cached_steps_without']}; first build {c['first_s']:.2f})")  # fmt: skip
