"""make demo: build a demo app from a local git repository and deploy it to the sandbox.

Starts what it needs (a Docker engine if none answers, a registry with password
auth), runs the real `damso build` and `damso deploy sandbox --converge-local`,
shows the healthy containers, then stops exactly what it started.
Set DEMO_KEEP=1 to leave the sandbox and containers running.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.daemons import Dockerd, Registry  # noqa: E402
from tests.support.gitrepos import make_repo  # noqa: E402
from tests.support.images import ensure_busybox_image  # noqa: E402

WORK = ROOT / ".demo"
DEMO = ROOT / "examples" / "demo"


def damso(*args: str, env: dict) -> None:
    print(f"\n$ damso {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, "-m", "damso_ops", *args], cwd=WORK / "project", env=env, check=True)


def main() -> int:
    import docker
    import jinja2

    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "project").mkdir(parents=True)
    with Dockerd() as engine, Registry() as registry:
        client = docker.DockerClient(base_url=engine.host)
        ensure_busybox_image(client)
        files = {p.name: p.read_text() for p in (DEMO / "Dockerfile", DEMO / "index.html")}
        repo = make_repo(WORK / "git", "hello", commits=2, tags={"v1": 2}, files=files)
        text = jinja2.Template((DEMO / "damso.toml.j2").read_text()).render(registry=registry.host, repo=repo)
        (WORK / "project" / "damso.toml").write_text(text)
        shutil.copytree(DEMO / "templates", WORK / "project" / "templates")
        env = {
            **os.environ,
            "DOCKER_HOST": engine.host,
            "GHCR_USERNAME": registry.username,
            "GHCR_TOKEN": registry.password,
            "REGISTRY_USERNAME": registry.username,
            "REGISTRY_PASSWORD": registry.password,
            "DEMO_TOKEN": secrets.token_urlsafe(12),
            "DAMSO_CACHE_DIR": str(WORK / "cache"),
        }
        try:
            damso("build", "--ref", "v1", env=env)
            damso("deploy", "sandbox", "--yes", "--converge-local", env=env)
            damso("deploy", "sandbox", "--yes", "--converge-local", env=env)  # the second run is a no-op
            for c in client.containers.list(filters={"label": "com.docker.compose.project"}):
                if c.labels["com.docker.compose.project"].startswith("damso-sandbox-"):
                    page = c.exec_run(["/bin/busybox", "wget", "-qO-", "http://127.0.0.1:8080/"]).output.decode()
                    print(f"\n{c.name} ({c.attrs['State']['Health']['Status']}):\n{page.strip()}")
        finally:
            if not os.environ.get("DEMO_KEEP"):
                for c in client.containers.list(all=True, filters={"label": "com.docker.compose.project"}):
                    if c.labels["com.docker.compose.project"].startswith("damso-sandbox-"):
                        c.remove(force=True)
                for n in client.networks.list(filters={"label": "com.docker.compose.project"}):  # and their bridges
                    if n.attrs.get("Labels", {}).get("com.docker.compose.project", "").startswith("damso-sandbox-"):
                        n.remove()
                subprocess.run([sys.executable, "-m", "damso_ops", "sandbox", "stop"], cwd=WORK / "project", env=env)
    print("\ndemo: done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
