"""boto3 sessions and clients, made in one place (endpoint override for the sandbox)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from damso_ops.errors import DamsoError


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

        kwargs = {"region_name": self.region, "config": Config(retries={"max_attempts": 5, "mode": "standard"})}
        if self.endpoint_url:
            kwargs.update(
                endpoint_url=self.endpoint_url,
                aws_access_key_id=self.access_key or "damso-sandbox",
                aws_secret_access_key=self.secret_key or "damso-sandbox",
            )
        if "session" not in self._clients:
            self._clients["session"] = boto3.session.Session()
        return self._clients["session"].client(service, **kwargs)

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
    if isinstance(exc, e.EndpointConnectionError):
        return DamsoError(f"Could not reach AWS at {exc.kwargs.get('endpoint_url')}.", hint="Check the network or the region.")
    if isinstance(exc, e.ParamValidationError):  # e.g. a bucket or parameter name AWS would refuse
        return DamsoError(f"AWS would refuse this request: {' '.join(str(exc).split())}")
    if isinstance(exc, e.BotoCoreError):  # an unknown profile, a malformed region or endpoint, …
        return DamsoError(f"AWS cannot be used as configured: {exc}")
    return None
