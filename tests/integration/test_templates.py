"""The shipped templates, rendered for the real Damso system: compose files pass the compose
specification (docker-compose config), the user-data passes shellcheck and holds no secret."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from damso_ops import config
from damso_ops.deploy import render
from tests.integration.conftest import wait_until
pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
OUTPUTS = {
    "shared": {"artifact_bucket": "damso-prod-artifacts-123456789012"},
    "api": {"private_ip": "10.0.10.5"},
    "data": {"redis_url": "redis://damso-prod.abc123.0001.apn2.cache.amazonaws.com:6379"},
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
    assert embedded_reconcile(text) == render.reconcile_source()
    assert "AWS_ENDPOINT_URL" not in text and "IMDS" not in text  # a real host uses AWS's own endpoints


def embedded_reconcile(user_data: str) -> str:
    """The reconcile unit as the bootstrap writes it to /opt/damso/reconcile.py (gzip, base64)."""
    import base64
    import gzip
    import re

    (blob,) = re.findall(r"<<'RECONCILE'[^\n]*\n(.*?)\nRECONCILE\n", user_data, flags=re.S)
    return gzip.decompress(base64.b64decode(blob)).decode()


def test_the_largest_user_data_fits_in_ec2s_16_kb(cfg):
    """Every role of every environment, and a sandbox host that is pointed at an emulator and a
    fake metadata service (the longest host.env): EC2 refuses user-data over 16 KB."""
    env = cfg.environments["prod"].model_copy(update={"sandbox": True, "host_imds_url": "http://127.0.0.1:65535"})
    sandbox = cfg.model_copy(update={"environments": {**cfg.environments, "sandbox": env}})
    sizes = {}
    for env_name, env in sandbox.environments.items():
        for role_name, role in env.roles.items():
            text = render.render_user_data(sandbox, env_name, role_name, role, f"damso-{env_name}-artifacts-123456789012",
                                           aws_endpoint="http://127.0.0.1:65535" if env.sandbox else None)  # fmt: skip
            sizes[f"{env_name}/{role_name}"] = len(text.encode())
    largest = max(sizes, key=sizes.get)
    print(f"largest user-data: {largest}, {sizes[largest]} bytes of 16384")
    assert sizes[largest] < 16384, sizes
    text = render.render_user_data(sandbox, "sandbox", "livekit", sandbox.environments["sandbox"].roles["livekit"], "b",
                                   aws_endpoint="http://127.0.0.1:4566")  # fmt: skip
    assert "AWS_ENDPOINT_URL=http://127.0.0.1:4566\n" in text
    assert "DAMSO_IMDS_URL=http://127.0.0.1:65535/latest\n" in text
    assert "AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:65535/\n" in text


def test_host_imds_url_is_only_for_sandbox_environments():
    text = ROOT.joinpath("damso.example.toml").read_text().replace(
        "[environments.prod]\n", '[environments.prod]\nhost_imds_url = "http://127.0.0.1:8999"\n', 1
    )
    with pytest.raises(config.ConfigError, match="environments.prod.host_imds_url is only for sandbox environments"):
        config.parse(text, ROOT / "damso.toml")


def test_each_service_gets_its_roles_stop_grace_period(cfg):
    """The example gives the agent 10 minutes to drain live calls; other roles keep docker's 10 s."""
    for role, grace in (("agent", "10m"), ("api", "10s")):
        files = render.render_files(cfg, "prod", role, cfg.environments["prod"].roles[role], images(cfg), OUTPUTS, "b")
        services = yaml.safe_load(files["compose.yml"])["services"]
        assert {name: s.get("stop_grace_period") for name, s in services.items()} == {name: grace for name in services}


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
    import threading

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
        reconcile = load_reconcile()
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


def test_fill_reports_what_changed_so_the_host_restarts_only_its_users(tmp_path, monkeypatch):
    """The reconcile unit fills X.in on every run; only a changed X (a new NODE_IP) is reported."""
    reconcile = load_reconcile()
    (tmp_path / "livekit.yaml.in").write_text("rtc:\n  node_ip: ${NODE_IP}\n")
    (tmp_path / "other.in").write_text("key: ${KEY}\n")
    monkeypatch.setenv("DAMSO_NODE_IP", "203.0.113.7")
    assert reconcile.fill(str(tmp_path), {"KEY": "k"}) == [str(tmp_path / "livekit.yaml"), str(tmp_path / "other")]
    assert reconcile.fill(str(tmp_path), {"KEY": "k"}) == []
    monkeypatch.setenv("DAMSO_NODE_IP", "198.51.100.9")  # an Elastic IP attached after the first run
    assert reconcile.fill(str(tmp_path), {"KEY": "k"}) == [str(tmp_path / "livekit.yaml")]
    assert (tmp_path / "livekit.yaml").read_text() == "rtc:\n  node_ip: 198.51.100.9\n"


def load_reconcile():
    import importlib.util

    spec = importlib.util.spec_from_file_location("reconcile", ROOT / "templates" / "host" / "reconcile.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DRAIN_TOML = """
[registry]
host = "127.0.0.1:5000"
namespace = "test"
[repositories.app]
url = "file:///nonexistent"
[services.app]
repo = "app"
image = "app"
[environments.local.roles.agent]
services = ["app"]
compose_template = "compose/drain.yml.j2"
stop_grace_period = "30s"
env = {{ GENERATION = "{generation}" }}
"""
# A worker that, like a LiveKit agent with live calls, needs DRAIN seconds after SIGTERM
# (more than docker's default 10 s); each generation logs when it starts and when it is done.
DRAIN = 13
DRAIN_COMPOSE = """\
services:
  worker:
    image: {{ images["app"] }}
    stop_grace_period: {{ stop_grace_period }}
    env_file: [{{ env_file }}, {{ secrets_file }}]
    volumes: ["./log:/log"]
    command: ["/bin/sh", "-c", "trap 'echo drain $$GENERATION $$(/bin/busybox date +%s) >> /log/events; sleep DRAIN_SECONDS; echo drained $$GENERATION $$(/bin/busybox date +%s) >> /log/events; exit 0' TERM; echo start $$GENERATION $$(/bin/busybox date +%s) >> /log/events; while true; do sleep 1; done"]
""".replace("DRAIN_SECONDS", str(DRAIN))


def test_a_container_gets_its_stop_grace_period_before_its_replacement_starts(tmp_path, dockerd, busybox_image):
    """A new release replaces the worker: compose sends SIGTERM, waits the role's stop_grace_period
    (30 s here) while the worker drains for 13 s, and only then starts the new one."""
    import docker

    (tmp_path / "templates" / "compose").mkdir(parents=True)
    (tmp_path / "templates" / "compose" / "drain.yml.j2").write_text(DRAIN_COMPOSE)
    host = tmp_path / "host"
    (host / "log").mkdir(parents=True)
    (host / render.SECRETS_FILE).write_text("")
    project = f"damso-grace-{secrets.token_hex(4)}"  # one of its own: runs on a shared engine must not meet
    env = {**os.environ, "DOCKER_HOST": dockerd.host}

    def release(generation: int) -> float:
        (tmp_path / "damso.toml").write_text(DRAIN_TOML.format(generation=generation))
        cfg = config.load(tmp_path / "damso.toml")
        role = cfg.environments["local"].roles["agent"]
        for name, text in render.render_files(cfg, "local", "agent", role, {"app": busybox_image}, {}, "b").items():
            (host / name).write_text(text)
        started = time.monotonic()
        out = subprocess.run(["docker-compose", "-p", project, "-f", "compose.yml", "up", "-d"], cwd=host, env=env,
                             capture_output=True, text=True)  # fmt: skip
        assert out.returncode == 0, out.stderr
        return time.monotonic() - started

    def events() -> list[list[str]]:
        return [line.split() for line in (host / "log" / "events").read_text().splitlines()]

    client = docker.DockerClient(base_url=dockerd.host)
    try:
        release(1)
        wait_until(lambda: (host / "log" / "events").exists() and events(), 60, "the worker's SIGTERM trap")  # it says start after
        took = release(2)
        log = events()
        assert [e[:2] for e in log] == [["start", "1"], ["drain", "1"], ["drained", "1"], ["start", "2"]], log
        drained, replaced = int(log[2][2]), int(log[3][2])
        assert drained - int(log[1][2]) >= DRAIN - 1 and replaced >= drained  # drained in full, then replaced
        assert took >= DRAIN - 1
    finally:
        for c in client.containers.list(all=True, filters={"label": f"com.docker.compose.project={project}"}):
            c.remove(force=True)
        for n in client.networks.list(filters={"label": f"com.docker.compose.project={project}"}):
            n.remove()
        client.close()
