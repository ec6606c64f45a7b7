"""Speed of damso deploy in the sandbox, measured side by side in one run.

First deploy vs no-op re-deploy vs app-only deploy (wall time, CPU time, S3 requests,
stacks applied), and parallel (--jobs 4) vs serial (--jobs 1) stack application of two
identical fresh environments. Terraform is real, against the embedded emulator, and the
containers really start (--converge-local). Reuses the Docker engine that answers (else
starts one) and starts a registry; stops and removes what it started.

Then, with hosts run as on EC2 (templates/host/reconcile.py --watch on this machine): a
host's wave start latency and idle cost (bench/watch_bench.py), and a three-wave app-only
rollout without --converge-local vs the sum of its hosts' own pull + start + health
(bench/rollout_bench.py).

S3 requests are counted from the emulator's request log (.damso/sandbox/moto.log, one line
per HTTP request): every PUT, whatever the bucket: the Terraform state bucket (state
objects, the S3 backend's *.tflock files, damso's lock <env>/damso.lock) and the artifact
bucket (releases, host reports) alike. S3 is path-style here, so the bucket is the first
path segment; the table names the buckets each deploy wrote to and the lock objects among
its PUTs.

Where the no-op's time goes is read from damso's own log (.damso/logs/damso.log, the
timestamped lines `damso --verbose` prints): start-up, the commands it ran, what came after.

`--json FILE` also writes the figures as JSON (`make bench` collects them into one table);
`--keep` leaves the project, its emulator and containers for a look afterwards;
`--watch-only` and `--rollout-only` run only what the hosts' lines need.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.conftest import APP_FILES, write_config  # noqa: E402
from tests.integration.test_deploy_sandbox import COMPOSE, sandbox_toml  # noqa: E402
from tests.support.daemons import Dockerd, Registry  # noqa: E402
from tests.support.gitrepos import make_repo  # noqa: E402
from tests.support.images import ensure_busybox_image  # noqa: E402

import rollout_bench  # noqa: E402  (bench/, this file's folder)
import watch_bench  # noqa: E402

ANSI = re.compile(r"\x1b\[[0-9;]*m")
REQUEST = re.compile(r'"(PUT|DELETE|POST|GET|HEAD) (/[^ ?"]*)[^"]*" (\d{3})')
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (\w+) ([\w.]+) (.*)$")
RUN = re.compile(r"^run: (\S+)(?: (\S+))?")
ROUTE53 = "/2013-04-01/"  # the one REST API besides S3 among the emulated services


def requests(project: Path) -> list[tuple[str, str, str]]:
    """(method, path, status) of every request the emulator logged so far."""
    log = project / ".damso" / "sandbox" / "moto.log"
    if not log.exists():
        return []
    return REQUEST.findall(ANSI.sub("", log.read_text(errors="replace")))  # werkzeug colours 3xx/4xx lines


def s3_writes(new: list[tuple[str, str, str]]) -> dict:
    puts = [path for method, path, _ in new if method == "PUT" and not path.startswith(ROUTE53)]
    locks = ["damso.lock" if p.endswith("/damso.lock") else "*.tflock" for p in puts
             if p.endswith(("/damso.lock", ".tflock"))]  # fmt: skip
    return {
        "puts": len(puts),
        "by_bucket": dict(Counter(path.strip("/").split("/", 1)[0] for path in puts)),
        "locks": dict(Counter(locks)),
        "deletes": sum(1 for method, path, _ in new if method == "DELETE" and not path.startswith(ROUTE53)),
        "requests": len(new),
    }


def log_lines(project: Path) -> list[tuple[datetime, str, str]]:
    path = project / ".damso" / "logs" / "damso.log"
    if not path.exists():
        return []
    lines = []
    for line in path.read_text(errors="replace").splitlines():
        m = LOG_LINE.match(line)
        if m:
            lines.append((datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S,%f"), m[3], m[4]))
    return lines


def children_cpu() -> float:
    """CPU seconds of the children waited for so far: damso and what it waited for (Terraform, git,
    the reconcile units). The emulator (it outlives damso) and the containers are not in it."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def breakdown(row: dict) -> list[str]:
    """Start-up until damso's first command, the commands it ran, and what came after the last one."""
    lines = row["log"]
    runs = [(t, m) for t, name, msg in lines if name == "damso.run" and (m := RUN.match(msg))]
    exits = [t for t, name, msg in lines if name == "damso.run" and msg.startswith("exit ")]
    if not runs or not exits:
        return [f"{row['seconds']:5.1f} s  no command ran (no stack planned: each as at its last clean plan); "
                "start-up, config, state and release reads, health reports",
                f"{row['cpu']:5.1f} s  CPU of damso over the whole no-op"]  # fmt: skip
    kinds = Counter(f"{os.path.basename(m[1])} {os.path.basename(m[2] or '')}".strip() for _, m in runs)
    first, last = runs[0][0], exits[-1]
    end = row["began"] + timedelta(seconds=row["seconds"])  # when damso had exited
    return [
        f"{(first - row['began']).total_seconds():5.1f} s  start-up, config and checks until the first command",
        f"{(last - first).total_seconds():5.1f} s  commands, from the first start to the last exit: "
        + ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items())),
        f"{(end - last).total_seconds():5.1f} s  after the last command (release comparison, health reports, exit)",
        f"{row['cpu']:5.1f} s  CPU of damso and its children over the whole no-op",
    ]


def report(rows: list[dict]) -> None:
    print("damso deploy benchmark in the sandbox (5 stacks, 4 hosts; real Terraform against the emulator; --converge-local)")
    print(f"{'':26} {'wall s':>7} {'CPU s':>6} {'S3 PUTs':>8} {'S3 DELETEs':>10} {'AWS requests':>12} "
          f"{'release objects':>15} {'stacks applied':>14}")  # fmt: skip
    for r in rows:
        print(f"{r['label']:26} {r['seconds']:7.1f} {r['cpu']:6.1f} {r['puts']:8d} {r['deletes']:10d} "
              f"{r['requests']:12d} {r['uploaded']:15d} {r['applied']:14d}")  # fmt: skip
    for r in rows:
        buckets = ", ".join(f"{b} {n}" for b, n in sorted(r["by_bucket"].items())) or "none"
        locks = ", ".join(f"{k} {n}" for k, n in sorted(r["locks"].items())) or "none"
        print(f"  S3 PUTs of {r['label']}: {buckets}; lock objects among them: {locks}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures here as JSON")
    parser.add_argument("--keep", action="store_true", help="leave the project, emulator and containers")
    parser.add_argument("--watch-only", action="store_true",
                        help="only what the hosts' lines need: the first and app-only deploys, the host's watch, the rollout")
    parser.add_argument("--rollout-only", action="store_true",
                        help="only the first deploy, then the three-wave rollout (the quickest)")
    options = parser.parse_args()
    quick = options.watch_only or options.rollout_only
    work = Path(tempfile.mkdtemp(prefix="damso-bench-deploy-"))
    started_all = time.perf_counter()
    # Names of this run's own: the compose projects (damso-<env>-<role>), containers and networks on the
    # shared engine are then this run's, never those of a test session deploying "sandbox" meanwhile.
    tag = secrets.token_hex(2)
    main_env, serial_env = f"bench-{tag}", f"bench-{tag}-serial"
    rows: list[dict] = []
    with Dockerd() as engine, Registry() as registry:
        import docker

        client = docker.DockerClient(base_url=engine.host)
        ensure_busybox_image(client)
        repos = {n: make_repo(work / "git", n, commits=1, files={**APP_FILES, "content.txt": "x\n"})
                 for n in ("app", "site", "broken")}  # fmt: skip
        project = work / "project"
        (project / "templates" / "compose").mkdir(parents=True)
        # The app as the rollout figure was first measured: no init, so a replaced container takes
        # Docker's 10 s stop timeout, standing in for a real app's graceful stop (the tests' app
        # stops at once: then the hosts' own work is 3.3 s a wave, and the ratio about 1.5x).
        assert "    init: true\n" in COMPOSE
        (project / "templates" / "compose" / "app.yml.j2").write_text(COMPOSE.replace("    init: true\n", ""))

        def environments(message: str = "hello", main=lambda text: text) -> str:
            """Both environments' TOML; main(text): the main environment's, changed (the rollout's waves)."""
            return "".join((main if name == main_env else str)(
                sandbox_toml(message).replace("environments.sandbox", f"environments.{name}"))
                for name in (main_env, serial_env))  # fmt: skip

        write_config(project, registry.host, repos, environments())
        env = {**os.environ, "DOCKER_HOST": engine.host, "GHCR_USERNAME": registry.username,
               "GHCR_TOKEN": registry.password, "REGISTRY_USERNAME": registry.username,
               "REGISTRY_PASSWORD": registry.password, "APP_SECRET": "bench-secret",
               "DAMSO_CACHE_DIR": str(work / "cache"), "CI": "1"}  # fmt: skip

        def damso(*args: str) -> dict:
            out = subprocess.run([sys.executable, "-m", "damso_ops", *args], cwd=project, env=env,
                                 capture_output=True, text=True, check=False)  # fmt: skip
            if out.returncode != 0:
                raise RuntimeError(f"damso {' '.join(args)} failed:\n{out.stderr[-3000:]}")
            return json.loads(out.stdout) if out.stdout.strip().startswith("{") else {}

        def remove_containers(env_name: str) -> None:
            """The containers and compose networks of one of this run's environments."""
            prefix = f"damso-{env_name}-"
            # The engine's list as it answers it: containers.list() would inspect each container, and one of
            # another run that is removed meanwhile would fail it.
            for c in client.api.containers(all=True, filters={"label": "com.docker.compose.project"}):
                if (c.get("Labels") or {}).get("com.docker.compose.project", "").startswith(prefix):
                    client.api.remove_container(c["Id"], force=True)
            for n in client.networks.list(filters={"label": "com.docker.compose.project"}):
                if n.attrs.get("Labels", {}).get("com.docker.compose.project", "").startswith(prefix):
                    n.remove()

        def measure(label: str, *args: str) -> dict:
            before, logged = len(requests(project)), len(log_lines(project))
            cpu, began = children_cpu(), datetime.now()
            start = time.perf_counter()
            data = damso("deploy", *args, "--yes", "--converge-local", "--json")
            seconds = time.perf_counter() - start
            row = {
                "label": label, "seconds": seconds, "cpu": children_cpu() - cpu, "began": began,
                **s3_writes(requests(project)[before:]), "uploaded": data["uploaded"],
                "applied": sum(1 for v in data["stacks"].values() if v["applied"]),
                "healthy": data["healthy"], "log": log_lines(project)[logged:], "release": data["release"],
            }  # fmt: skip
            rows.append(row)
            return row

        try:
            damso("build", "--ref", "main", "api")
            first = measure("first deploy (--jobs 4)", main_env, "--jobs", "4")
            noop = None if quick else measure("no-op re-deploy", main_env)
            watch, message = None, "hello"
            if not options.rollout_only:
                message = "app-only"
                write_config(project, registry.host, repos, environments(message))
                app_only = measure("app-only deploy", main_env)
                watch = watch_bench.measure(project, main_env, env, lambda: requests(project),
                                            (app_only["release"], first["release"]))  # fmt: skip
            rollout = rollout_bench.measure(
                project, main_env, env, lambda main: write_config(project, registry.host, repos, environments(message, main)))
            remove_containers(main_env)  # only one environment's networks at a time on the shared engine
            serial = None if quick else measure("first deploy (--jobs 1)", serial_env, "--jobs", "1")
        except BaseException:
            if rows:
                report(rows)
            raise
        finally:  # the containers, networks and emulator this run started, also when it fails
            if not options.keep:
                try:
                    for name in (main_env, serial_env):
                        remove_containers(name)
                except Exception as exc:  # noqa: BLE001 - the engine went away: the emulator still stops
                    print(f"could not remove this run's containers: {exc}", file=sys.stderr)
                subprocess.run([sys.executable, "-m", "damso_ops", "sandbox", "stop"], cwd=project, env=env,
                               capture_output=True, check=False)  # fmt: skip
                shutil.rmtree(work, ignore_errors=True)

    report(rows)
    if watch:
        print("a host's watch (templates/host/reconcile.py --watch), one host of the sandbox run as on EC2:")
        for line in watch_bench.lines(watch):
            print(f"  {line}")
    print("a rollout to hosts run as on EC2 (templates/host/reconcile.py --watch, every host of the environment):")
    for line in rollout_bench.lines(rollout):
        print(f"  {line}")
    if quick:
        print(f"(deploy bench, {'--watch-only' if options.watch_only else '--rollout-only'}: "
              f"{time.perf_counter() - started_all:.0f} s in all)")
        if options.json:
            options.json.write_text(json.dumps({"watch": watch, "rollout": rollout}, indent=2))  # watch: None with --rollout-only
        return
    ratio = noop["seconds"] / first["seconds"]
    print(f"no-op/first = {ratio:.3f}   first/app-only = {first['seconds'] / app_only['seconds']:.1f}x   "
          f"serial/parallel first deploy = {serial['seconds'] / first['seconds']:.2f}x")  # fmt: skip
    print(f"where the no-op's {noop['seconds']:.1f} s went (damso's log, .damso/logs/damso.log):")
    for line in breakdown(noop):
        print(f"  {line}")
    print(f"(deploy bench: {time.perf_counter() - started_all:.0f} s in all)")
    if options.json:
        figures = {
            "first_s": first["seconds"], "noop_s": noop["seconds"], "noop_ratio": ratio, "noop_puts": noop["puts"],
            "noop_deletes": noop["deletes"], "app_only_s": app_only["seconds"], "serial_s": serial["seconds"],
            "parallel_s": first["seconds"], "first_cpu_s": first["cpu"], "noop_cpu_s": noop["cpu"],
            "first_puts_by_bucket": first["by_bucket"], "first_lock_puts": first["locks"], "watch": watch,
            "rollout": rollout,
        }  # fmt: skip
        options.json.write_text(json.dumps(figures, indent=2))
    if options.keep:
        print(f"kept: {project} (emulator running; 'python3 -m damso_ops sandbox stop' there stops it)")


if __name__ == "__main__":
    main()
