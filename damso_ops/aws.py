"""boto3 sessions and clients, made in one place (endpoint override for the sandbox).

Retries are chosen here, on purpose, for every client damso makes: botocore's
`standard` mode with ATTEMPTS attempts in all (the first and up to four retries,
exponential backoff with jitter, at most 20 s apart). Standard mode retries
throttling (503 SlowDown), 500/502/503/504 and transient network errors (a
connection refused, reset or closed, a connect or read timeout), for every
operation: S3 writes that damso makes are idempotent or conditional (see
deploy/lock.py for how a conditional put whose answer was lost is recognised).
A connection that cannot be made in CONNECT_TIMEOUT seconds, or an answer that
does not come in READ_TIMEOUT seconds, counts as a failed attempt.
docs/deploy.md ("Faults") lists what each fault does.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from damso_ops.errors import DamsoError

ATTEMPTS = 5  # botocore's total_max_attempts: the first attempt and up to 4 retries
CONNECT_TIMEOUT = 10  # seconds
READ_TIMEOUT = 60  # seconds


@dataclass(frozen=True)
class AwsEndpoint:
    """Where AWS calls go: the real thing (endpoint None) or an emulator."""

    region: str
    endpoint_url: str | None = None
    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    # One boto3 session per endpoint and one client per service, made on first use
    # (sessions are not thread-safe to create clients from: hence the lock).
    _clients: dict = field(default_factory=dict, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    @property
    def emulated(self) -> bool:
        return self.endpoint_url is not None

    def client(self, service: str):
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self._make_client(service)
            return self._clients[service]

    def _make_client(self, service: str):
        import boto3
        from botocore.config import Config

        config = Config(retries={"total_max_attempts": ATTEMPTS, "mode": "standard"},
                        connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT)  # fmt: skip
        kwargs = {"region_name": self.region, "config": config}
        if self.endpoint_url:
            kwargs.update(
                endpoint_url=self.endpoint_url,
                aws_access_key_id=self.access_key or "damso-sandbox",
                aws_secret_access_key=self.secret_key or "damso-sandbox",
            )
        if "session" not in self._clients:
            self._clients["session"] = boto3.session.Session()
        client = self._clients["session"].client(service, **kwargs)
        client.meta.events.register("after-call-error", _note_attempts(client.meta.service_model.service_id))
        return client

    def process_env(self) -> dict[str, str]:
        """Environment for child processes (terraform, the reconcile unit) talking to the same AWS."""
        env = {"AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region}
        if self.endpoint_url:
            env.update(
                AWS_ENDPOINT_URL=self.endpoint_url,
                AWS_ACCESS_KEY_ID=self.access_key or "damso-sandbox",
                AWS_SECRET_ACCESS_KEY=self.secret_key or "damso-sandbox",
            )
        return env


def _note_attempts(service: str):
    """A hook that marks an exception ending a call with the service and how many attempts were made."""

    def note(exception: Exception, context: dict, **kwargs) -> None:
        try:
            exception.damso_attempts = context.get("retries", {}).get("attempt")
            exception.damso_service = service
        except AttributeError:  # an exception type that takes no attributes
            pass

    return note


# What a network failure was, in words; the first matching class wins (subclasses first).
_NETWORK = (
    ("ConnectionClosedError", "connection closed"),
    ("ResponseStreamingError", "connection broken while reading the answer"),
    ("ReadTimeoutError", f"no answer within {READ_TIMEOUT} s"),
    ("ConnectTimeoutError", f"no connection within {CONNECT_TIMEOUT} s"),
    ("ProxyConnectionError", "the proxy failed"),
    ("SSLError", "the TLS handshake failed"),
    ("EndpointConnectionError", "connection refused or no route"),
    ("ConnectionError", "connection failed"),
    ("HTTPClientError", "connection failed"),
)


def network_error(exc: Exception) -> DamsoError | None:
    """'Could not reach S3 at http://host:port: connection closed (after 4 retries).' for botocore's
    network failures (raised after its retries), else None."""
    from botocore import exceptions as e

    for name, what in _NETWORK:
        if isinstance(exc, getattr(e, name)):
            break
    else:
        return None
    url = urlsplit(str(getattr(exc, "kwargs", {}).get("endpoint_url") or ""))
    where = f" at {url.scheme}://{url.netloc}" if url.netloc else ""
    attempts = getattr(exc, "damso_attempts", None)
    retries = f" (after {attempts - 1} {'retry' if attempts == 2 else 'retries'})" if attempts else ""
    service = getattr(exc, "damso_service", None) or "AWS"
    return DamsoError(
        f"Could not reach {service}{where}: {what}{retries}.",
        hint="Check the network (a sandbox: 'damso sandbox status'), then run the command again.",
    )


def explain(exc: Exception):
    """A DamsoError for what boto3 raises when AWS cannot be used as asked, else None."""
    if not type(exc).__module__.startswith("botocore"):
        return None
    from botocore import exceptions as e


    if isinstance(exc, (e.NoCredentialsError, e.PartialCredentialsError)):
        return DamsoError(
            "No AWS credentials were found.",
            hint="Set AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or run 'aws sso login'; "
            "sandbox environments need none.",
        )
    if isinstance(exc, e.ClientError):
        error = exc.response.get("Error", {})
        return DamsoError(f"AWS refused {exc.operation_name}: {error.get('Code')}: {error.get('Message')}.")
    network = network_error(exc)
    if network:
        return network
    if isinstance(exc, e.ParamValidationError):  # e.g. a bucket or parameter name AWS would refuse
        return DamsoError(f"AWS would refuse this request: {' '.join(str(exc).split())}")
    if isinstance(exc, e.BotoCoreError):  # an unknown profile, a malformed region or endpoint, …
        return DamsoError(f"AWS cannot be used as configured: {exc}")
    return None
