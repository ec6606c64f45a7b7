"""The shipped templates, rendered for the real Damso system: compose files pass the compose
specification (docker-compose config), the user-data passes shellcheck and holds no secret."""

from __future__ import annotations

import shutil
import subprocess
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from damso_ops import config
from damso_ops.deploy import render
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


class _Imds(BaseHTTPRequestHandler):
    """Instance metadata with IMDSv2: a PUT for a token, then GETs that must carry it."""

    TOKEN = "imds-session-token"

    def do_PUT(self):  # noqa: N802
        ok = self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
        self._answer(200 if ok else 400, self.TOKEN if ok else "")

    def do_GET(self):  # noqa: N802
        if self.headers.get("X-aws-ec2-metadata-token") != self.TOKEN:
            return self._answer(401, "")
        answers = {"/latest/meta-data/public-ipv4": "203.0.113.7", "/latest/meta-data/instance-id": "i-0abc"}
        self._answer(200 if self.path in answers else 404, answers.get(self.path, ""))

    def _answer(self, code, body):
        self.send_response(code)
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


def test_livekit_files_of_the_dev_server_and_the_hosts_fill_step(cfg, tmp_path, monkeypatch):
    """livekit.yaml.in holds placeholders only; the reconcile unit's fill step (IMDSv2 for the
    node IP) turns it into a livekit.yaml with the keys and every webhook; compose is valid."""
    import importlib.util
    import threading
    import yaml

    env = cfg.environments["dev"]
    hooks = [*env.livekit.webhook_urls, "https://3.sodam.store/webhook/livekit"]
    files = render.render_files(cfg, "dev", "livekit", env.roles["livekit"], {}, OUTPUTS, "bucket", webhook_urls=hooks)
    assert set(files) == {"compose.yml", "role.env", "livekit.yaml.in", "Caddyfile"}
    assert "livekit.sodam.store {" in files["Caddyfile"] and "reverse_proxy 127.0.0.1:7880" in files["Caddyfile"]
    assert "livekit/livekit-server:v1.8.4" in files["compose.yml"] and "caddy:2.8.4" in files["compose.yml"]
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "livekit.yaml").write_text("")
    result = subprocess.run(["docker-compose", "-f", "compose.yml", "config", "-q"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Imds)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        spec = importlib.util.spec_from_file_location("reconcile", ROOT / "templates" / "host" / "reconcile.py")
        reconcile = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(reconcile)
        monkeypatch.delenv("DAMSO_NODE_IP", raising=False)
        monkeypatch.setenv("DAMSO_IMDS_URL", f"http://127.0.0.1:{server.server_port}/latest")
        reconcile.fill(str(tmp_path), {"LIVEKIT_API_KEY": "APIdev0123456789", "LIVEKIT_API_SECRET": "s" * 43})
    finally:
        server.shutdown()
    conf = yaml.safe_load((tmp_path / "livekit.yaml").read_text())
    assert conf["keys"] == {"APIdev0123456789": "s" * 43}
    assert conf["webhook"] == {"api_key": "APIdev0123456789", "urls": hooks}
    assert conf["rtc"] == {"tcp_port": 7883, "port_range_start": 50000, "port_range_end": 60000,
                           "node_ip": "203.0.113.7", "use_external_ip": False, "allow_tcp_fallback": True}  # fmt: skip
    assert conf["port"] == 7880 and (tmp_path / "livekit.yaml").stat().st_mode & 0o777 == 0o600
    missing = tmp_path / "missing"
    missing.mkdir()
    (missing / "livekit.yaml.in").write_text(files["livekit.yaml.in"])
    monkeypatch.setenv("DAMSO_NODE_IP", "198.51.100.1")
    with pytest.raises(RuntimeError, match="livekit.yaml.in needs LIVEKIT_API_KEY, LIVEKIT_API_SECRET"):
        reconcile.fill(str(missing), {})
