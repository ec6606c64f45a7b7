"""Speed of damso deploy in the sandbox, measured side by side in one run.

First deploy vs no-op re-deploy vs app-only deploy (wall time, S3 PUT requests,
stacks applied), and parallel (--jobs 4) vs serial (--jobs 1) stack application
of two identical fresh environments. Containers really start (--converge-local).
Starts a Docker engine if none answers and a registry; stops what it started.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.conftest import APP_FILES, write_config  # noqa: E402
from tests.integration.test_deploy_sandbox import COMPOSE, sandbox_toml  # noqa: E402
from tests.support.daemons import Dockerd, Registry  # noqa: E402
from tests.support.gitrepos import make_repo  # noqa: E402
from tests.support.images import ensure_busybox_image  # noqa: E402


def s3_puts(project: Path) -> int:
    log = project / ".damso" / "sandbox" / "moto.log"
    if not log.exists():
        return 0
    return sum(1 for line in log.read_text(errors="replace").splitlines() if '"PUT /' in line)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="damso-bench-deploy-"))
    with Dockerd() as engine, Registry() as registry:
        import docker

        client = docker.DockerClient(base_url=engine.host)
        ensure_busybox_image(client)
        repos = {n: make_repo(work / "git", n, commits=1, files={**APP_FILES, "content.txt": "x\n"}) for n in ("app", "site", "broken")}
        project = work / "project"
        (project / "templates" / "compose").mkdir(parents=True)
        (project / "templates" / "compose" / "app.yml.j2").write_text(COMPOSE)
        serial_env = sandbox_toml().replace("environments.sandbox", "environments.serial")
        write_config(project, registry.host, repos, sandbox_toml() + serial_env)
        env = {**os.environ, "DOCKER_HOST": engine.host, "GHCR_USERNAME": registry.username,
               "GHCR_TOKEN": registry.password, "REGISTRY_USERNAME": registry.username,
               "REGISTRY_PASSWORD": registry.password, "APP_SECRET": "bench-secret",
               "DAMSO_CACHE_DIR": str(work / "cache"), "CI": "1"}  # fmt: skip

        def damso(*args: str) -> dict:
            out = subprocess.run([sys.executable, "-m", "damso_ops", *args], cwd=project, env=env,
                                 capture_output=True, text=True)  # fmt: skip
            if out.returncode != 0:
                raise SystemExit(f"damso {' '.join(args)} failed:\n{out.stderr[-3000:]}")
            return json.loads(out.stdout) if out.stdout.strip().startswith("{") else {}

        try:
            damso("build", "--ref", "main", "api")
            rows = []

            def measure(label: str, *args: str) -> float:
                puts = s3_puts(project)
                start = time.perf_counter()
                data = damso("deploy", *args, "--yes", "--converge-local", "--json")
                seconds = time.perf_counter() - start
                applied = [s for s, v in data["stacks"].items() if v["applied"]]
                rows.append((label, seconds, s3_puts(project) - puts, data["uploaded"], len(applied)))
                return seconds

            parallel = measure("first deploy (--jobs 4)", "sandbox", "--jobs", "4")
            measure("no-op re-deploy", "sandbox")
            write_config(project, registry.host, repos, sandbox_toml("app-only") + serial_env)
            measure("app-only deploy", "sandbox")
            serial = measure("first deploy (--jobs 1)", "serial", "--jobs", "1")
        finally:  # the containers and the emulator this run started, also when it fails
            for c in client.containers.list(all=True, filters={"label": "com.docker.compose.project"}):
                if c.labels["com.docker.compose.project"].startswith(("damso-sandbox-", "damso-serial-")):
                    c.remove(force=True)
            subprocess.run([sys.executable, "-m", "damso_ops", "sandbox", "stop"], cwd=project, env=env, capture_output=True)

    print("damso deploy benchmark in the sandbox (5 stacks, 4 hosts)")
    print(f"{'':28} {'wall s':>8} {'S3 PUTs':>8} {'release objects':>16} {'stacks applied':>15}")
    for label, seconds, puts, uploaded, applied in rows:
        print(f"{label:28} {seconds:8.1f} {puts:8d} {uploaded:16d} {applied:15d}")
    print(f"first/no-op = {rows[0][1] / rows[1][1]:.1f}x   first/app-only = {rows[0][1] / rows[2][1]:.1f}x   "
          f"serial/parallel stack application = {serial / parallel:.2f}x")  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
