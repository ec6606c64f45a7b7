"""The embedded AWS emulator behind `damso deploy sandbox`.

moto keeps its state in memory and has no persistence, so the sandbox runs
moto's server (damso_ops/emulator.py: one request at a time) as a background
process owned by damso (pid, port and log in .damso/sandbox/) and reuses it
across runs: a second run talks to the same
state and is a real no-op. `damso sandbox stop` ends exactly that pid. If the
server is gone (reboot), the next run starts a fresh one and everything is
created again, consistently, because Terraform's state lives in the emulated S3.
DAMSO_SANDBOX_ENDPOINT sends damso's AWS calls (boto3, Terraform, the hosts) to
another URL in front of the emulator, e.g. a fault-injecting proxy (endpoint()).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from damso_ops.errors import DamsoError
from damso_ops.timing import wait_for


@dataclass(frozen=True)
class SandboxServer:
    pid: int
    port: int

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


ENDPOINT_ENV = "DAMSO_SANDBOX_ENDPOINT"  # where damso sends the sandbox's AWS calls instead (a proxy in front of it)


def endpoint(state_dir: Path) -> str:
    """Where a sandbox's AWS calls go: the running emulator (started if none runs), or, when
    DAMSO_SANDBOX_ENDPOINT is set, that URL (the emulator still runs behind it). Fault tests put
    a proxy there; server.json keeps naming the emulator itself."""
    server = ensure(state_dir)
    override = os.environ.get(ENDPOINT_ENV, "").strip()
    if not override:
        return server.endpoint_url
    if not re.fullmatch(r"https?://[^/\s]+/?", override):
        raise DamsoError(f"{ENDPOINT_ENV}={override!r} is not an endpoint URL like http://127.0.0.1:4566.",
                         hint=f"Unset {ENDPOINT_ENV} to use the sandbox emulator at {server.endpoint_url}.")  # fmt: skip
    return override.rstrip("/")


def _folder(state_dir: Path) -> Path:
    return state_dir / "sandbox"


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=2):
            return True
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie or a recycled pid of another program is not ours
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True
    return b"damso_ops.emulator" in cmdline or b"moto.server" in cmdline  # the latter: started by an older damso


def running(state_dir: Path) -> SandboxServer | None:
    info = _folder(state_dir) / "server.json"
    try:
        data = json.loads(info.read_text())
        server = SandboxServer(int(data["pid"]), int(data["port"]))
    except (OSError, ValueError, KeyError):
        return None
    if _alive(server.pid) and _answers(server.endpoint_url):
        return server
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure(state_dir: Path, timeout: float = 30) -> SandboxServer:
    """The running sandbox server, started if there is none."""
    server = running(state_dir)
    if server:
        return server
    folder = _folder(state_dir)
    folder.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    log = open(folder / "moto.log", "ab")
    env = {**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "damso_ops.emulator", "--host", "127.0.0.1", "--port", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,  # outlives this damso process, on purpose
    )
    server = SandboxServer(proc.pid, port)
    failed = DamsoError(f"The sandbox AWS emulator did not start (see {folder / 'moto.log'}).",
                        hint="Check that moto[server] is installed: pip install 'moto[server]'.")  # fmt: skip

    def started() -> bool | None:
        if proc.poll() is not None:
            raise failed
        return _answers(server.endpoint_url) or None

    try:
        wait_for(started, timeout=timeout, interval=0.2, what="the sandbox emulator")
    except (TimeoutError, DamsoError):
        proc.kill()
        raise failed from None
    (folder / "server.json").write_text(json.dumps({"pid": server.pid, "port": server.port}))
    return server


def stop(state_dir: Path) -> bool:
    """Stop the sandbox server this project started (by its pid). False if none ran."""
    server = running(state_dir)
    info = _folder(state_dir) / "server.json"
    if server is None:
        info.unlink(missing_ok=True)
        return False
    os.kill(server.pid, signal.SIGTERM)
    try:
        wait_for(lambda: (not _alive(server.pid)) or None, timeout=5, interval=0.1, what="the emulator to stop")
    except TimeoutError:
        os.kill(server.pid, signal.SIGKILL)
    info.unlink(missing_ok=True)
    return True
