"""The shipped templates, rendered for the real Damso system: compose files pass the compose
specification (docker-compose config), the user-data passes shellcheck and holds no secret."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from damso_ops import config, render

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
OUTPUTS = {
    "shared": {"artifact_bucket": "damso-prod-artifacts-123456789012"},
    "api": {"private_ip": "10.0.10.5"},
}


@pytest.fixture(scope="module")
def cfg():
    return config.load(ROOT / "damso.example.toml")


def images(cfg):
    return {name: f"ghcr.io/namanmoo-damso/{svc.image}@sha256:{'a' * 64}" for name, svc in cfg.services.items()}


@pytest.mark.parametrize("role", ["api", "web", "agent", "livekit"])
def test_compose_files_follow_the_compose_specification(cfg, role, tmp_path):
    files = render.render_files(cfg, "prod", role, cfg.environments["prod"].roles[role], images(cfg), OUTPUTS,
                                OUTPUTS["shared"]["artifact_bucket"])  # fmt: skip
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    (tmp_path / render.SECRETS_FILE).write_text("")
    compose = shutil.which("docker-compose")
    assert compose, "docker-compose (Debian) is installed by make setup"
    result = subprocess.run([compose, "-f", "compose.yml", "config", "-q"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "@sha256:" in files["compose.yml"] or role == "livekit"  # images pinned by digest
    assert ":latest" not in files["compose.yml"]


def test_agent_env_refers_to_the_api_private_ip(cfg):
    files = render.render_files(cfg, "prod", "agent", cfg.environments["prod"].roles["agent"], images(cfg), OUTPUTS, "b")
    assert "API_BASE_URL=http://10.0.10.5:8080\n" in files["role.env"]


@pytest.mark.parametrize("role", ["api", "web", "agent", "livekit"])
def test_user_data_passes_shellcheck_and_embeds_the_reconcile_unit(cfg, role, tmp_path):
    text = render.render_user_data(cfg, "prod", role, cfg.environments["prod"].roles[role], "damso-prod-artifacts")
    path = tmp_path / "user-data.sh"
    path.write_text(text)
    result = subprocess.run(["shellcheck", "--shell=bash", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    assert f"DAMSO_ROLE={role}\n" in text and "DAMSO_BUCKET=damso-prod-artifacts\n" in text
    assert render.reconcile_source().strip() in text
    assert len(text.encode()) < 16384  # EC2's user-data limit
