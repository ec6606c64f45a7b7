"""Every health check the shipped templates give a service fails when that service is down, and
passes when something answers where the service would (so no check fails only because a tool is
missing, or passes whatever happens). Each check runs on this machine in a network namespace of
its own (`unshare -n`: nothing listens there unless the test starts it), with the tools the
service's image has (curl, wget, node, python), as `docker compose` would run it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from damso_ops.deploy import preview
from tests.support import example

pytestmark = pytest.mark.integration
REDIS_URL = "redis://127.0.0.1:6379/0"
# (role, service) → what answers where the service would: (port, kind). kind "http:CODE" is an
# HTTP server answering CODE to every GET; "tcp" is a listener holding a connection from a client
# in the same namespace (a Redis client's connection).
STANDS_IN = {
    ("api", "api"): (8080, "http:200"),
    ("web", "web"): (3000, "http:307"),
    ("agent", "stt"): (8000, "http:200"),
    ("agent", "ollama"): (11434, "http:200"),
    ("agent", "kma-mcp"): (8001, "http:200"),
    ("agent", "agent"): (8081, "http:200"),
    ("agent", "transcript-storage"): (6379, "tcp"),
    ("livekit", "livekit"): (7880, "http:200"),
    ("livekit", "caddy"): (2019, "http:200"),
    # the agent role in ops-agent's dev shape (compose/agent-dev.yml.j2)
    ("agent-dev", "vllm"): (8000, "http:200"),
    ("agent-dev", "ai-server"): (8001, "http:200"),
    ("agent-dev", "stt"): (8003, "http:200"),
    ("agent-dev", "kma-mcp"): (8002, "http:200"),
    ("agent-dev", "agent"): (8081, "http:200"),
    ("agent-dev", "transcript-storage"): (6379, "tcp"),
}
# Run inside the namespace: loopback up, the stand-in (if any) started, then the check.
HELPER = r"""
import json, socket, subprocess, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
spec = json.loads(sys.argv[1])
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
held = []
if spec["kind"].startswith("http:"):
    code = int(spec["kind"].split(":")[1])
    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(code)
            self.send_header("Location", "/login")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
        def log_message(self, *a):
            pass
    server = ThreadingHTTPServer(("127.0.0.1", spec["port"]), H)
    threading.Thread(target=server.serve_forever, daemon=True).start()
elif spec["kind"] == "tcp":
    listener = socket.create_server(("127.0.0.1", spec["port"]))
    held.append(socket.create_connection(("127.0.0.1", spec["port"])))
    held.append(listener.accept()[0])
try:
    result = subprocess.run(spec["argv"], env=spec["env"], timeout=30, capture_output=True, text=True)
    print(json.dumps({"code": result.returncode, "output": (result.stdout + result.stderr)[-500:]}))
except subprocess.TimeoutExpired:
    print(json.dumps({"code": "timeout", "output": ""}))
"""


def checks() -> list[tuple[str, str, list[str]]]:
    """(role, service, argv) of every health check in the example's rendered compose files
    (prod, dev for the LiveKit server with Caddy, and prod's agent switched to its dev shape),
    as docker runs it ($$ is a $)."""
    cfg = example.load()
    found = {}
    shapes = [(cfg, "prod", ""), (cfg, "dev", ""), (example.with_agent_dev(cfg), "prod", "-dev")]
    for shape, env_name, suffix in shapes:
        for role in preview.preview(shape, env_name, ["agent"] if suffix else [], use_state=False).roles:
            compose = yaml.safe_load({f.name: f.text for f in role.files}["compose.yml"])
            for service, spec in compose["services"].items():
                test = spec.get("healthcheck", {}).get("test")
                assert test, f"{role.role}/{service} has no health check: it would count as healthy whatever it does"
                kind, *rest = test
                argv = ["sh", "-c", rest[0]] if kind == "CMD-SHELL" else list(rest)
                found[(role.role + suffix, service)] = [a.replace("$$", "$") for a in argv]
    return [(role, service, argv) for (role, service), argv in sorted(found.items())]


def run_check(argv: list[str], port: int, kind: str, tmp_path: Path) -> dict:
    shims = tmp_path / "bin"
    shims.mkdir(exist_ok=True)
    if not (shims / "python").exists():
        (shims / "python").symlink_to(sys.executable)  # the agent's images call it python
    env = {"PATH": f"{shims}:/usr/local/bin:/usr/bin:/bin", "REDIS_URL": REDIS_URL, "HOME": str(tmp_path)}
    spec = json.dumps({"argv": argv, "env": env, "port": port, "kind": kind})
    out = subprocess.run(["unshare", "-n", sys.executable, "-c", HELPER, spec], capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def namespaces():
    if not shutil.which("unshare") or subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        pytest.skip("unshare -n (a network namespace of its own) is not allowed here")
    for tool in ("curl", "wget", "node", "ip"):
        assert shutil.which(tool), f"{tool} runs the shipped checks (make setup installs it)"


CHECKS = checks()


def test_every_checked_service_has_a_stand_in():
    assert {(role, service) for role, service, _ in CHECKS} == set(STANDS_IN)


@pytest.mark.parametrize("role, service, argv", CHECKS, ids=[f"{r}-{s}" for r, s, _ in CHECKS])
def test_the_check_fails_with_its_service_down_and_passes_with_it_up(namespaces, tmp_path, role, service, argv):
    port, kind = STANDS_IN[(role, service)]
    down = run_check(argv, port, "none", tmp_path)
    assert down["code"] not in (0, "timeout"), f"{role}/{service}: the check passes with nothing there: {argv}"
    up = run_check(argv, port, kind, tmp_path)
    assert up["code"] == 0, f"{role}/{service}: the check fails with its stand-in up: {up['output']}"
