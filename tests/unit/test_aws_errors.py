"""Network failures that botocore gives up on are named as such, with the endpoint and the retries."""

from __future__ import annotations

import pytest

from damso_ops.aws import ATTEMPTS, AwsEndpoint, explain


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    """botocore's retries without their sleeps (the attempts are what is tested, not the waits)."""
    monkeypatch.setattr("botocore.retries.standard.ExponentialBackoff.delay_amount", lambda self, context: 0)


def failure(call) -> Exception:
    with pytest.raises(Exception) as exc:
        call()
    return exc.value


def test_a_refused_connection_names_the_endpoint_and_the_retries(monkeypatch):
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    s3 = AwsEndpoint("us-east-1", endpoint_url="http://127.0.0.1:9").client("s3")
    error = explain(failure(lambda: s3.list_buckets()))
    assert error.message == f"Could not reach S3 at http://127.0.0.1:9: connection refused or no route (after {ATTEMPTS - 1} retries)."
    assert "network" in error.hint


def test_a_connection_closed_on_every_attempt_says_so(aws):
    from botocore.exceptions import ConnectionClosedError

    s3 = aws.client("s3")
    attempts = []

    def close(request, **kwargs):
        attempts.append(request.url)
        raise ConnectionClosedError(endpoint_url=request.url)

    s3.meta.events.register_first("before-send.s3.PutObject", close)
    error = explain(failure(lambda: s3.put_object(Bucket="b", Key="prod/damso.lock", Body=b"{}")))
    assert len(attempts) == ATTEMPTS
    assert error.message.startswith("Could not reach S3 at https://")
    assert error.message.endswith(f": connection closed (after {ATTEMPTS - 1} retries).")
    assert "prod/damso.lock" not in error.message  # the endpoint, not the object


def test_other_botocore_errors_are_not_called_network_errors():
    from botocore.exceptions import ClientError, ProfileNotFound

    assert explain(ProfileNotFound(profile="x")).message.startswith("AWS cannot be used as configured")
    refused = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "PutObject")
    assert explain(refused).message == "AWS refused PutObject: AccessDenied: no."
