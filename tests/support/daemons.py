"""Real daemons for tests and scripts: each one stops exactly the process it started."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.net import free_port, wait_until

CACHE = Path(os.environ.get("DAMSO_TEST_CACHE", Path.home() / ".cache" / "damso-tests"))


class _Process:
    """A child process with a log file, stopped by its own pid."""

    name = "daemon"

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.tmp = Path(tempfile.mkdtemp(prefix=f"damso-{self.name}-"))

    def _spawn(self, argv: list[str], env: dict | None = None) -> None:
        log = open(self.tmp / f"{self.name}.log", "wb")
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env={**os.environ, **(env or {})})  # fmt: skip

    def log_tail(self, n: int = 30) -> str:
        path = self.tmp / f"{self.name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:]) if path.exists() else ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()


class Dockerd(_Process):
    """Reuse an engine that answers; else start dockerd with its own socket and a cached data root."""

    name = "dockerd"

    def __init__(self) -> None:
        super().__init__()
        self.host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")

    @staticmethod
    def answers(host: str) -> bool:
        import docker

        try:
            return docker.DockerClient(base_url=host, timeout=5).ping()
        except Exception:  # noqa: BLE001
            return False

    def start(self) -> "Dockerd":
        if self.answers(self.host):
            return self
        if not shutil.which("dockerd"):
            raise RuntimeError("No Docker engine answers and dockerd is not installed: run 'make setup'.")
        data = CACHE / "docker-data"
        data.mkdir(parents=True, exist_ok=True)
        self.host = f"unix://{self.tmp}/docker.sock"
        self._spawn([
            "dockerd", "--data-root", str(data), "--exec-root", str(self.tmp / "exec"),
            "--pidfile", str(self.tmp / "docker.pid"), "--host", self.host,
        ])  # fmt: skip
        try:
            wait_until(lambda: self.proc.poll() is None and self.answers(self.host), 60, "dockerd")
        except TimeoutError:
            raise RuntimeError(f"dockerd did not start:\n{self.log_tail()}") from None
        return self


class Registry(_Process):
    """CNCF distribution on 127.0.0.1 with htpasswd (bcrypt) auth."""

    name = "registry"

    def __init__(self, username: str | None = None, password: str | None = None) -> None:
        super().__init__()
        self.username = username or f"user{secrets.token_hex(3)}"
        self.password = password or secrets.token_urlsafe(16)
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"

    def start(self) -> "Registry":
        import bcrypt

        htpasswd = self.tmp / "htpasswd"
        hashed = bcrypt.hashpw(self.password.encode(), bcrypt.gensalt(rounds=5)).decode()
        htpasswd.write_text(f"{self.username}:{hashed}\n")
        config = self.tmp / "config.yml"
        config.write_text(
            "version: 0.1\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.tmp / 'data'}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.host}\n  secret: {secrets.token_hex(16)}\n"
            f"auth:\n  htpasswd:\n    realm: damso-test\n    path: {htpasswd}\n"
        )
        self._spawn(["docker-registry", "serve", str(config)])

        def answers_401() -> bool:
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=2)
            except urllib.error.HTTPError as exc:
                return exc.code == 401
            return False

        try:
            wait_until(answers_401, 30, "registry")
        except TimeoutError:
            raise RuntimeError(f"registry did not start:\n{self.log_tail()}") from None
        return self
