"""A small fault-injecting HTTP proxy on 127.0.0.1, in front of one upstream (the sandbox's
AWS emulator, or the registry): every request is forwarded as it came (same method, path,
headers and body; Host too, so the upstream builds its URLs with the proxy's address), and
the rules decide which ones fail, and how:

- "lose": the request reaches the upstream and is done there, then the connection closes
  before any answer (the client cannot know the write happened);
- "reset": the connection is reset before the request reaches the upstream.

A rule matches a method and a regular expression over the path, for its first `times`
matching requests (None: for ever). `fired` counts what each rule did. `answered` holds
(method, path, status) of every request the upstream answered, in order.
"""

from __future__ import annotations

import http.client
import re
import socket
import struct
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection", "expect"}


@dataclass
class Rule:
    action: str  # lose | reset
    method: str
    path: str  # a regular expression, searched in the path (with its query)
    times: int | None = 1
    fired: int = 0

    def takes(self, method: str, path: str) -> bool:
        if method != self.method and self.method != "*":
            return False
        if not re.search(self.path, path) or (self.times is not None and self.fired >= self.times):
            return False
        self.fired += 1
        return True


class FaultProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.rules: list[Rule] = []
        self.seen: list[tuple[str, str]] = []
        self.answered: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _body(self) -> bytes:
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    data = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return data
                        data += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _cut(self, reset: bool) -> None:
                if reset:  # RST instead of FIN
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

            def _handle(self) -> None:
                body = self._body()
                with proxy._lock:
                    proxy.seen.append((self.command, self.path))
                    rule = next((r for r in proxy.rules if r.takes(self.command, self.path)), None)
                if rule is not None and rule.action == "reset":
                    return self._cut(reset=True)
                # Repeated headers (a registry client's several Accept lines) are kept, each one.
                headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"content-length"}]
                if body or self.command in ("PUT", "POST", "PATCH"):
                    headers.append(("Content-Length", str(len(body))))
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=120)
                try:
                    upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                    for k, v in headers:
                        upstream.putheader(k, v)
                    upstream.endheaders(body or None)
                    response = upstream.getresponse()
                    data = response.read()
                finally:
                    upstream.close()
                with proxy._lock:
                    proxy.answered.append((self.command, self.path, response.status))
                if rule is not None and rule.action == "lose":
                    return self._cut(reset=False)
                self.send_response_only(response.status, response.reason)
                for k, v in response.getheaders():
                    if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                        self.send_header(k, v)
                length = response.getheader("Content-Length") if self.command == "HEAD" else str(len(data))
                if length is not None:
                    self.send_header("Content-Length", length)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def add(self, action: str, method: str, path: str, times: int | None = 1) -> Rule:
        rule = Rule(action, method, path, times)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def __enter__(self) -> "FaultProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
