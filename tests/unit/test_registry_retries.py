"""Registry calls through the Docker engine: network failures are retried, then named."""

from __future__ import annotations

import pytest

from damso_ops.images import builder
from damso_ops.errors import DamsoError


def flaky(*failures: str, result: str = "sha256:" + "a" * 64):
    """A call that fails with each engine message in turn, then answers."""
    calls = []

    def call():
        calls.append(1)
        if len(calls) <= len(failures):
            raise DamsoError(failures[len(calls) - 1])
        return result

    return call, calls


@pytest.mark.parametrize("text, words", [
    ('Push of r/api:v7 failed: Put "http://127.0.0.1:5000/v2/r/api/manifests/v7": EOF.', "connection closed"),
    ("Cannot ask the registry about r/api:v7: read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer.",
     "connection reset"),
    ("Push of r/api:v7 failed: received unexpected HTTP status: 503 Service Unavailable.", "the registry failed (503)"),
    ("Get http://r/v2/: dial tcp: i/o timeout", "no answer in time"),
])
def test_network_failures_are_recognised(text, words):
    assert builder.network_failure(text) == words


def test_other_failures_are_not_network_failures():
    assert builder.network_failure("Push of r/api:v7 failed: denied: requested access to the resource is denied.") is None
    assert builder.network_failure("unauthorized: authentication required (reopened)") is None


def test_a_failure_that_passes_is_retried():
    call, calls = flaky("Push failed: EOF.")
    slept = []
    assert builder.with_retries("r", call, sleep=slept.append).startswith("sha256:")
    assert len(calls) == 2 and slept == [builder.RETRY_DELAY]


def test_a_persistent_failure_names_the_registry_and_the_retries():
    call, calls = flaky(*["Push failed: read: connection reset by peer."] * 5)
    with pytest.raises(builder.RegistryUnreachable) as exc:
        builder.with_retries("127.0.0.1:5000", call, sleep=lambda s: None)
    assert len(calls) == builder.REGISTRY_ATTEMPTS
    retries = builder.REGISTRY_ATTEMPTS - 1
    assert exc.value.message == f"Could not reach the registry at 127.0.0.1:5000: connection reset (after {retries} retries)."


def test_a_refusal_is_not_retried():
    call, calls = flaky("Push of r/api:v7 failed: denied.")
    with pytest.raises(DamsoError, match="denied"):
        builder.with_retries("r", call, sleep=lambda s: None)
    assert len(calls) == 1
