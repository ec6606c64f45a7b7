"""A fake EC2 instance metadata service that speaks IMDSv2 only, on 127.0.0.1.

A client first PUTs /latest/api/token (with X-aws-ec2-metadata-token-ttl-seconds)
and then GETs /latest/meta-data/... with X-aws-ec2-metadata-token; a GET without
a valid token is refused with 401, as on an instance with http_tokens=required.
It plays one instance (`play`): its id, addresses and the instance role's
credentials (any key does for moto), which is how boto3 on a test machine gets
credentials, as on EC2. Machines on this host's network tell their metadata
services apart by address: each server listens on a loopback address of its own
(127.0.0.0/8 is all loopback) and the same port, and each machine resolves one
host name to its own server's address.
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROLE_NAME = "damso-test-host"


@dataclass
class Instance:
    instance_id: str
    local_ipv4: str = "10.0.10.10"
    public_ipv4: str | None = None  # None: the instance has no public address (404, as on EC2)
    region: str = "ap-northeast-2"


@dataclass
class FakeImds:
    instance: Instance | None = None
    address: str = "127.0.0.1"
    port: int = 0  # 0: any free port
    tokens: set[str] = field(default_factory=set)
    refused: int = 0  # GETs without a valid token
    served: list[str] = field(default_factory=list)  # paths answered with 200

    def start(self) -> "FakeImds":
        imds = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self):  # noqa: N802
                if self.path != "/latest/api/token" or not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                    return self._answer(400, "")
                token = secrets.token_urlsafe(24)
                imds.tokens.add(token)
                self._answer(200, token)

            def do_GET(self):  # noqa: N802
                if self.headers.get("X-aws-ec2-metadata-token") not in imds.tokens:
                    imds.refused += 1
                    return self._answer(401, "")
                body = imds.answer(self.path)
                if body is None:
                    return self._answer(404, "")
                imds.served.append(self.path)
                self._answer(200, body)

            def _answer(self, code: int, body: str) -> None:
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((self.address, self.port), Handler)
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    @property
    def url(self) -> str:
        """The service's root, as AWS_EC2_METADATA_SERVICE_ENDPOINT takes it (EC2: http://169.254.169.254)."""
        return f"http://{self.address}:{self.port}"

    def play(self, instance: Instance | None) -> None:
        self.instance = instance

    def answer(self, path: str) -> str | None:
        i = self.instance
        if i is None:
            return None
        now = datetime.now(timezone.utc)
        updated, expires = (t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in (now, now + timedelta(hours=6)))
        meta = {
            "instance-id": i.instance_id,
            "local-ipv4": i.local_ipv4,
            "public-ipv4": i.public_ipv4,
            "placement/region": i.region,
            "iam/security-credentials/": ROLE_NAME,
            f"iam/security-credentials/{ROLE_NAME}": json.dumps({
                "Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": "ASIADAMSOTESTHOST",
                "SecretAccessKey": "damso-test-host", "Token": "damso-test-host-token",
                "LastUpdated": updated, "Expiration": expires,
            }),  # fmt: skip
        }
        prefix = "/latest/meta-data/"
        return meta.get(path[len(prefix):]) if path.startswith(prefix) else None

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)

    def __enter__(self) -> "FakeImds":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
