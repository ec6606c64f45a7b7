"""damso init --repo against real git repositories (file://): each is fetched at its ref with the
build's own git code, its Dockerfiles become services and their ARGs build args; the skeleton loads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from damso_ops import config
from tests.support.gitrepos import add_commit, make_repo

pytestmark = pytest.mark.integration
DAMSO = str(Path(sys.executable).parent / "damso")
AGENT_V3 = {
    "Dockerfile": "FROM python:3.12-slim\nARG APP_VERSION=3\n",
    "stt/Dockerfile": "FROM nvidia/cuda:12.4.1-runtime-ubuntu22.04\nARG WHISPER_MODEL=large-v3\n",
    "mcp/Dockerfile": "FROM python:3.12-slim\n",
    "node_modules/pkg/Dockerfile": "FROM scratch\n",  # never a service
}
WEB = {"Dockerfile": "FROM node:20\nARG NEXT_PUBLIC_API_URL\nARG NEXT_PUBLIC_ROOM_NAME=demo-room\n"}


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DAMSO_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("DAMSO_CONFIG", None)
    return subprocess.run([DAMSO, *args], cwd=tmp_path / "work", env=env, capture_output=True, text=True)


def test_a_skeleton_from_repositories_at_their_refs(tmp_path, git_root):
    """The agent repository has its services only at tag v3 (as ops-agent: main lacks stt/ and mcp/);
    the web one is read at main. Each Dockerfile at its ref becomes a service."""
    agent = make_repo(git_root, f"agent-{tmp_path.name}", commits=2, files={"Dockerfile": "FROM python:3.12-slim\n"})
    v3 = add_commit(agent, AGENT_V3, "v3 shape", branch="tmp-deploy-v3", tag="v3")
    web = make_repo(git_root, f"web-{tmp_path.name}", commits=1, files=WEB)
    (tmp_path / "work").mkdir()
    result = run(tmp_path, "init", "--repo", f"file://{agent}", "--repo", f"file://{web}",
                 "--ref", f"agent-{tmp_path.name}=v3", "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    repos = json.loads(result.stdout)["repositories"]
    a, w = f"agent-{tmp_path.name}", f"web-{tmp_path.name}"
    assert repos[a]["commit"] == v3 and repos[a]["ref"] == "v3"
    assert repos[a]["services"] == [a, f"{a}-mcp", f"{a}-stt"] and repos[w]["services"] == [w]
    cfg = config.load(tmp_path / "work" / "damso.toml")
    assert cfg.services[f"{a}-stt"].context == "stt" and cfg.repositories[a].default_ref == "v3"
    assert cfg.services[w].env_build_args == ["NEXT_PUBLIC_API_URL"]
    text = (tmp_path / "work" / "damso.toml").read_text()
    assert '# build_args = { WHISPER_MODEL = "large-v3" }' in text and "node_modules" not in text
    assert "NEXT_PUBLIC_API_URL = \"\"   # set: ARG of" in text

    again = run(tmp_path, "init", "--repo", f"file://{web}")
    assert again.returncode == 2 and "already exists" in again.stderr


def test_a_ref_that_does_not_exist_names_the_nearest_and_writes_nothing(tmp_path, git_root):
    web = make_repo(git_root, f"web-{tmp_path.name}", commits=1, files=WEB)
    add_commit(web, {"x.txt": "x"}, "dev work", branch="dev")
    (tmp_path / "work").mkdir()
    result = run(tmp_path, "init", "--repo", f"file://{web}", "--ref", "v3")
    assert result.returncode == 2
    assert f"Repository 'web-{tmp_path.name}' has no tag, branch or commit 'v3'; nearest:" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "work" / "damso.toml").exists()
