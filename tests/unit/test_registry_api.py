"""registry_api: what it makes of a registry's auth challenge, when it declines to answer, and
the Bearer token flow GHCR speaks (the test registry speaks Basic; tests/integration/test_build.py
holds the Reader against it and against the engine's answers)."""

from __future__ import annotations

import base64
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from damso_ops.images import registry_api
from damso_ops.images.registry_api import Reader, Unusable

DIGEST = "sha256:" + "ab" * 32


def test_challenges_are_read_as_scheme_and_parameters():
    header = 'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:team/api:pull"'
    assert registry_api.challenge(header) == (
        "bearer", {"realm": "https://ghcr.io/token", "service": "ghcr.io", "scope": "repository:team/api:pull"})
    assert registry_api.challenge('Basic realm="damso-test"') == ("basic", {"realm": "damso-test"})
    assert registry_api.challenge("") == ("", {})


@pytest.mark.parametrize("docker_host, local", [
    ("", True), ("unix:///var/run/docker.sock", True), ("tcp://127.0.0.1:2375", True),
    ("tcp://localhost:2375", True), ("tcp://10.0.0.5:2376", False), ("ssh://build@runner", False),
])  # fmt: skip
def test_an_engine_is_local_on_a_socket_or_a_loopback_address(docker_host, local):
    assert registry_api.engine_is_local({"DOCKER_HOST": docker_host} if docker_host else {}) is local


def test_a_loopback_registry_behind_a_remote_engine_is_left_to_the_engine():
    reader = Reader("127.0.0.1:5000", "u", "p", {"DOCKER_HOST": "ssh://build@runner"})
    with pytest.raises(Unusable):
        reader.digest("127.0.0.1:5000/team/api:v1")
    assert Reader("ghcr.io", "u", "p", {"DOCKER_HOST": "ssh://build@runner"}).usable
    assert Reader("ghcr.io", "u", "p", {}).base == "https://ghcr.io"


def test_a_reference_elsewhere_is_not_answered():
    reader = Reader("127.0.0.1:5000", "u", "p", {})
    with pytest.raises(Unusable):
        reader.digest("ghcr.io/team/api:v1")
    assert not reader.usable  # and the engine answers the rest of this run


class TokenRegistry(BaseHTTPRequestHandler):
    """A registry that speaks the distribution spec's token auth, as GHCR does."""

    token_requests: list[dict] = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        url = urlparse(self.path)
        user = base64.b64decode(self.headers.get("Authorization", "Basic ").split(" ", 1)[1]).decode()
        if url.path != "/token" or user != "robot:s3cret":
            self.send_response(401)
            self.end_headers()
            return
        self.token_requests.append(parse_qs(url.query))
        body = b'{"token": "tok-123"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self):
        host = self.headers["Host"]
        if self.headers.get("Authorization") != "Bearer tok-123":
            self.send_response(401)
            self.send_header("WWW-Authenticate", f'Bearer realm="http://{host}/token",service="test",'
                                                 'scope="repository:team/api:pull"')  # fmt: skip
        elif self.path == "/v2/team/api/manifests/v1" and "image.index" in self.headers.get("Accept", ""):
            self.send_response(200)
            self.send_header("Docker-Content-Digest", DIGEST)
        else:
            self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def token_registry():
    server = ThreadingHTTPServer(("127.0.0.1", 0), TokenRegistry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    TokenRegistry.token_requests = []
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_bearer_challenge_is_answered_with_one_pull_token_per_repository(token_registry):
    reader = Reader(token_registry, "robot", "s3cret", {})
    assert reader.digest(f"{token_registry}/team/api:v1") == DIGEST
    assert reader.digest(f"{token_registry}/team/api:v2") is None
    assert TokenRegistry.token_requests == [{"scope": ["repository:team/api:pull"], "service": ["test"]}]
    reader.close()


def test_a_refused_token_leaves_the_answer_to_the_engine(token_registry):
    reader = Reader(token_registry, "robot", "wrong", {})
    with pytest.raises(Unusable, match="token service answered 401"):
        reader.digest(f"{token_registry}/team/api:v1")
    with pytest.raises(Unusable, match="not asked again"):
        reader.digest(f"{token_registry}/team/api:v1")
