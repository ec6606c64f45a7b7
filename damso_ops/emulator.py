"""The sandbox's AWS emulator process: moto's server, entered by one request at a time.

moto's in-memory backends are not safe for concurrent access (its documentation says so).
damso applies several Terraform stacks at once, each with up to ten requests in flight;
on a loaded machine two of them interleave inside moto and fail in ways AWS never does
(an IAM role "already exists" on its first creation, a new security group's default
egress rule "not found"). Connections stay concurrent (a threaded server); the
application runs one request at a time. Where moto differs from AWS in what damso's stacks
meet (Route53 zone ids, ElastiCache replication groups), it is made as AWS has it
(damso_ops/emulator_gaps.py). Started by damso_ops.sandbox.ensure.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading

from moto.moto_server import werkzeug_app
from werkzeug.serving import WSGIRequestHandler, run_simple

from damso_ops import emulator_gaps
from damso_ops.deploy.container_logs import CREDENTIALS_PATH

# moto's own server keeps S3 metadata headers whose names hold underscores with a request
# handler that only newer moto has. Older moto (as 5.2.1, which pyproject allows) has none: its
# server uses werkzeug's, as this falls back to. `make test-lowest` runs a sandbox deploy
# at the lowest moto, so this fallback is tested, not only the newest path.
REQUEST_HANDLER = getattr(werkzeug_app, "MotoRequestHandler", WSGIRequestHandler)


# Where the Docker engine's awslogs driver takes credentials for the emulator (see
# damso_ops/deploy/container_logs.py): fake keys, which moto accepts as it accepts any.
CREDENTIALS = json.dumps({"AccessKeyId": "damso-sandbox", "SecretAccessKey": "damso-sandbox",
                          "Token": "damso-sandbox", "Expiration": "2099-01-01T00:00:00Z"}).encode()  # fmt: skip


class OneAtATime:
    """A WSGI application wrapped so that one request at a time is inside it."""

    def __init__(self, app) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == CREDENTIALS_PATH and environ.get("REQUEST_METHOD") == "GET":
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(CREDENTIALS)))])
            return [CREDENTIALS]
        with self.lock:
            result = self.app(environ, start_response)
            try:
                return list(result)
            finally:
                if hasattr(result, "close"):
                    result.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="moto's server, one request at a time")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    emulator_gaps.install()  # what damso's stacks meet where moto differs from AWS (see that module)
    app = werkzeug_app.DomainDispatcherApplication(werkzeug_app.create_backend_app)
    app.debug = True  # as moto's own server: a failing request answers with its traceback
    run_simple(args.host, args.port, OneAtATime(app), threaded=True, request_handler=REQUEST_HANDLER)


if __name__ == "__main__":
    main()
