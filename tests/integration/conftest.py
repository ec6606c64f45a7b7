"""A damso project on disk for integration tests: real git repos, a real registry."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from damso_ops.cli import app
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
