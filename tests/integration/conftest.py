"""A damso project on disk for integration tests: real git repos, a real registry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from damso_ops.cli import app
from tests.support import leftovers
from tests.support.gitrepos import add_commit, make_repo

APP_FILES = {
    "Dockerfile": (
        "FROM local/busybox:1\n"
        'RUN ["/bin/busybox", "sh", "-c", "echo built > /built"]\n'
        "COPY content.txt /content.txt\n"
        'CMD ["/bin/busybox", "sleep", "3600"]\n'
    ),
    "worker/Dockerfile": "FROM local/busybox:1\nCOPY job.txt /job.txt\n",
    "worker/job.txt": "worker\n",
}
SITE_FILES = {
    "Dockerfile": (
        "FROM local/busybox:1\n"
        "ARG PUBLIC_URL\n"
        'RUN ["/bin/busybox", "sh", "-c", "echo $PUBLIC_URL > /public_url"]\n'
        "COPY index.html /index.html\n"
    ),
    "index.html": "<h1>site</h1>\n",
}
BROKEN_FILES = {
    "Dockerfile": 'FROM local/busybox:1\nRUN ["/bin/busybox", "sh", "-c", "echo about to fail; exit 7"]\n',
}


def git_sha(bare: Path, ref: str) -> str:
    return subprocess.run(
        ["git", "-C", str(bare), "rev-parse", f"{ref}^{{commit}}"], capture_output=True, text=True, check=True
    ).stdout.strip()


@dataclass
class Project:
    root: Path
    env: dict[str, str]
    repos: dict[str, Path]
    registry: object
    runner: CliRunner = field(default_factory=CliRunner)

    @property
    def config(self) -> Path:
        return self.root / "damso.toml"

    def damso(self, *args: str, env: dict[str, str] | None = None):
        return self.runner.invoke(app, ["--config", str(self.config), *args], env={**self.env, **(env or {})})

    def damso_json(self, *args: str, env: dict[str, str] | None = None):
        result = self.damso(*args, "--json", env=env)
        return result, json.loads(result.stdout) if result.stdout.strip() else None

    def builds(self) -> list[Path]:
        folder = self.root / ".damso" / "builds"
        return sorted(p for p in folder.glob("*.json") if p.name != "latest.json") if folder.exists() else []


def write_config(root: Path, registry_host: str, repos: dict[str, Path], extra: str = "") -> None:
    (root / "damso.toml").write_text(
        f"""
[project]
name = "demo"

[registry]
host = "{registry_host}"
namespace = "team"

[repositories.app]
url = "file://{repos['app']}"
default_ref = "main"

[repositories.site]
url = "file://{repos['site']}"

[repositories.broken]
url = "file://{repos['broken']}"

[services.api]
repo = "app"
image = "api"

[services.worker]
repo = "app"
image = "worker"
context = "worker"

[services.site]
repo = "site"
image = "site"
env_build_args = ["PUBLIC_URL"]

[services.broken]
repo = "broken"
image = "broken"

[environments.prod.build_args]
PUBLIC_URL = "https://prod.example"

[environments.dev.build_args]
PUBLIC_URL = "https://dev.example"
{extra}"""
    )


@pytest.fixture
def project(tmp_path, registry, dockerd, busybox_image, git_root) -> Project:
    name = tmp_path.name
    repos = {
        "app": make_repo(git_root, f"app-{name}", commits=3, tags={"v1": 1}, files={**APP_FILES, "content.txt": "one\n"}),
        "site": make_repo(git_root, f"site-{name}", commits=2, files=SITE_FILES),
        "broken": make_repo(git_root, f"broken-{name}", commits=1, files=BROKEN_FILES),
    }
    add_commit(repos["app"], {"content.txt": "two\n"}, "content two", tag="v2")
    add_commit(repos["site"], {"index.html": "<h1>feature</h1>\n"}, "feature page", branch="feature/x")
    root = tmp_path / "project"
    root.mkdir()
    write_config(root, registry.host, repos)
    env = {
        "DOCKER_HOST": dockerd.host,
        "GHCR_USERNAME": registry.username,
        "GHCR_TOKEN": registry.password,
        "DAMSO_CACHE_DIR": str(tmp_path / "cache"),
        "DAMSO_CONFIG": None,
        "DAMSO_STATE_DIR": None,
        "CI": "true",
    }
    return Project(root, env, repos, registry)


# ---- sandbox projects (deploy, operate, livekit tests) ----------------------------------


@dataclass
class SandboxProject(Project):
    """A project with its own templates and a sandbox environment; `outputs` keeps every
    console output for the leak checks, `compose_prefix` names the containers it starts."""

    outputs: list = field(default_factory=list)
    compose_prefix: str = "damso-sandbox-"

    def run(self, *args: str, env: dict[str, str] | None = None):
        result = self.damso(*args, env=env)
        self.outputs.append(result.output)
        return result

    def run_json(self, *args: str, env: dict[str, str] | None = None):
        result = self.run(*args, "--json", env=env)
        return result, (json.loads(result.stdout) if result.stdout.strip().startswith("{") else None)

    @property
    def aws(self):
        from damso_ops.aws import AwsEndpoint

        server = json.loads((self.root / ".damso" / "sandbox" / "server.json").read_text())
        return AwsEndpoint("ap-northeast-2", f"http://127.0.0.1:{server['port']}")

    def bucket(self, kind: str) -> str:
        """The env's 'tfstate' or 'artifacts' bucket."""
        (name,) = [b["Name"] for b in self.aws.client("s3").list_buckets()["Buckets"] if f"-{kind}-" in b["Name"]]
        return name

    def spawn(self, *args: str) -> subprocess.Popen:
        """`python3 -m damso_ops ARGS` in its own session, so the whole group (terraform too) can be killed."""
        env = {**os.environ, **{k: v for k, v in self.env.items() if v is not None}}
        for k in [k for k, v in self.env.items() if v is None]:
            env.pop(k, None)
        argv = [sys.executable, "-m", "damso_ops", "--config", str(self.config), *args]
        return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)  # fmt: skip

    def remove_containers(self, docker_host: str) -> None:
        """The containers of the project's compose projects, then their networks (and with them their bridges)."""
        import docker

        client = docker.DockerClient(base_url=docker_host)
        try:
            for c in client.containers.list(all=True, filters={"label": "com.docker.compose.project"}):
                if c.labels.get("com.docker.compose.project", "").startswith(self.compose_prefix):
                    c.remove(force=True)
            for n in client.networks.list(filters={"label": "com.docker.compose.project"}):
                if n.attrs.get("Labels", {}).get("com.docker.compose.project", "").startswith(self.compose_prefix):
                    n.remove()
        finally:
            client.close()


def sandbox_project(base: Path, registry, dockerd, git_root, templates: dict[str, str], toml: str,
                    env: dict[str, str | None], build: bool = True) -> SandboxProject:  # fmt: skip
    """Repos with the test app, the project's templates and config; the app's image built once."""
    repos = {name: make_repo(git_root, f"{name}-{base.name}", commits=1, files=APP_FILES | {"content.txt": "x\n"})
             for name in ("app", "site", "broken")}  # fmt: skip
    root = base / "project"
    for name, text in templates.items():
        (root / "templates" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "templates" / name).write_text(text)
    write_config(root, registry.host, repos, toml)
    project = SandboxProject(root, {
        "DOCKER_HOST": dockerd.host,
        "REGISTRY_USERNAME": registry.username,
        "REGISTRY_PASSWORD": registry.password,
        "GHCR_USERNAME": registry.username,
        "GHCR_TOKEN": registry.password,
        "DAMSO_CACHE_DIR": str(base / "cache"),
        "DAMSO_CONFIG": None,
        "DAMSO_STATE_DIR": None,
        "CI": "true",
        **env,
    }, repos, registry)  # fmt: skip
    if build:
        built = project.run("build", "--ref", "main", "api")
        assert built.exit_code == 0, built.output
    return project


def wait_until(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None):
    """predicate()'s first true value within timeout; fails the test if `proc` ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the command ended (exit {proc.returncode}) before {what}: {proc.stdout.read()[-3000:]}")
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


@contextmanager
def sandbox_lifetime(project: SandboxProject, docker_host: str):
    """Stop the project's emulator and remove its containers and networks at the end, also on failure.
    Its compose projects are this run's, for the leftover check at the end of the run (tests/support/leftovers.py)."""
    leftovers.note_compose_project(project.compose_prefix)
    try:
        yield project
    finally:
        project.damso("sandbox", "stop")
        project.remove_containers(docker_host)
