"""The sandbox's AWS emulator process: moto's server, entered by one request at a time.

moto's in-memory backends are not safe for concurrent access (its documentation says so).
damso applies several Terraform stacks at once, each with up to ten requests in flight;
on a loaded machine two of them interleave inside moto and fail in ways AWS never does
(an IAM role "already exists" on its first creation, a new security group's default
egress rule "not found"). Connections stay concurrent (a threaded server); the
application runs one request at a time, and a retried request that moto already carried
out is answered again rather than run twice (OneAtATime). Where moto differs from AWS in what damso's stacks
meet (Route53 zone ids, ElastiCache replication groups), it is made as AWS has it
(damso_ops/emulator_gaps.py). Started by damso_ops.sandbox.ensure.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import threading
from collections import OrderedDict

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


# An AWS SDK retries a request whose answer it did not get, with the same invocation id in
# `amz-sdk-invocation-id` and `attempt=N` in `amz-sdk-request`. On a loaded machine the SDK in
# Terraform's AWS provider sometimes sends again a create that moto has carried out (the
# emulator's log showed several a run), and the retry fails where AWS would not: a second
# CreateNatGateway finds its address "already associated", a second CreateRoute
# "RouteAlreadyExists", a second AuthorizeSecurityGroupEgress "InvalidPermission.Duplicate".
# AWS's EC2 creates are idempotent under a retry (the ClientToken the SDK fills in, which moto
# ignores); here a retried write that was answered with success gets that same answer again,
# and moto does not run it twice. Not for S3, whose retries AWS does not make idempotent: a
# retried conditional put of damso's lock gets 412 there, and damso must (and is tested to)
# find its own token; nor for reads, which may run twice (their answers can be large).
ANSWERS_KEPT = 4096


def _replayable(environ) -> bool:
    """A write to a service other than S3 (the service is named in the request's signature)."""
    signed_for = re.search(r"/([a-z0-9-]+)/aws4_request", environ.get("HTTP_AUTHORIZATION", ""))
    return environ.get("REQUEST_METHOD") not in ("GET", "HEAD") and bool(signed_for) and signed_for.group(1) != "s3"


class OneAtATime:
    """A WSGI application wrapped so that one request at a time is inside it, and a retried
    request that already succeeded is answered as it was the first time (see ANSWERS_KEPT)."""

    def __init__(self, app, log=None) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.answers: OrderedDict[str, tuple[str, list, list[bytes]]] = OrderedDict()
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == CREDENTIALS_PATH and environ.get("REQUEST_METHOD") == "GET":
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(CREDENTIALS)))])
            return [CREDENTIALS]
        invocation = environ.get("HTTP_AMZ_SDK_INVOCATION_ID")
        retry = re.search(r"attempt=([2-9]|\d\d)", environ.get("HTTP_AMZ_SDK_REQUEST", ""))
        with self.lock:
            if invocation and retry and invocation in self.answers:
                status, headers, body = self.answers[invocation]
                self.log(f"emulator: attempt {retry.group(1)} of {environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')}, "
                         f"already answered {status} (invocation {invocation}): the same answer again, not run twice")  # fmt: skip
                start_response(status, headers)
                return body
            answer: list = []

            def starting(status, headers, exc_info=None):
                answer[:] = [status, list(headers)]
                return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

            result = self.app(environ, starting)
            try:
                body = list(result)
            finally:
                if hasattr(result, "close"):
                    result.close()
            if invocation and answer and answer[0][:1] == "2" and _replayable(environ):
                self.answers[invocation] = (answer[0], answer[1], body)
                if len(self.answers) > ANSWERS_KEPT:
                    self.answers.popitem(last=False)
            return body


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
