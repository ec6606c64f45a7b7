"""The deploy lock against moto's in-process S3: atomic create, refuse, wait, release, leftovers."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from damso_ops.deploy import lock
BUCKET = "demo-prod-tfstate-123456789012"


@pytest.fixture
def s3():
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("s3", region_name="ap-northeast-2", aws_access_key_id="x", aws_secret_access_key="y")
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "ap-northeast-2"})
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield client


def test_second_acquire_is_refused_naming_the_holder(s3):
    first = lock.acquire(s3, BUCKET, "prod", "deploy")
    with pytest.raises(lock.LockHeld) as exc:
        lock.acquire(s3, BUCKET, "prod", "rollback")
    assert exc.value.exit_code == 3
    assert f"prod is locked: deploy by {first.info['holder']} (pid {first.info['pid']}) since" in exc.value.message
    assert "damso unlock prod" in exc.value.hint
    assert lock.release(s3, first) and lock.read(s3, BUCKET, "prod") is None
    again = lock.acquire(s3, BUCKET, "prod", "deploy")  # a delete marker does not block the conditional put
    assert lock.read(s3, BUCKET, "prod")["token"] == again.info["token"]


def test_a_waiting_acquire_gets_the_lock_when_released(s3):
    first = lock.acquire(s3, BUCKET, "prod", "deploy")
    events = []

    def on_event(phase, message):  # the holder lets go once the second one says it waits
        events.append(message)
        lock.release(s3, first)

    second = lock.acquire(s3, BUCKET, "prod", "deploy", timeout=10, poll=0.1, on_event=on_event)
    assert second.info["token"] != first.info["token"]
    assert events[0].startswith("waiting for deploy by")


def test_release_leaves_a_lock_taken_after_unlock(s3):
    stale = lock.acquire(s3, BUCKET, "prod", "deploy")
    assert lock.force_release(s3, BUCKET, "prod")["pid"] == stale.info["pid"]
    fresh = lock.acquire(s3, BUCKET, "prod", "deploy")
    assert not lock.release(s3, stale)
    assert lock.read(s3, BUCKET, "prod")["token"] == fresh.info["token"]


def test_held_releases_on_ctrl_c(s3):
    with pytest.raises(KeyboardInterrupt):
        with lock.held(s3, BUCKET, "prod", "deploy"):
            raise KeyboardInterrupt
    assert lock.read(s3, BUCKET, "prod") is None


def test_leftover_terraform_locks_are_removed_except_young_plan_locks(s3):
    now = datetime.now(timezone.utc)

    def tflock(key, operation, age):
        created = (now - timedelta(seconds=age)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps({"Operation": operation, "Created": created}).encode())

    tflock("prod/web.tfstate.tflock", "OperationTypeApply", 5)
    tflock("prod/api.tfstate.tflock", "OperationTypePlan", 5)
    tflock("prod/agent.tfstate.tflock", "OperationTypePlan", 3600)
    tflock("dev/web.tfstate.tflock", "OperationTypeApply", 5)
    events = []
    lock.acquire(s3, BUCKET, "prod", "deploy", on_event=lambda p, m: events.append(m))
    left = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"])
    assert left == ["dev/web.tfstate.tflock", "prod/api.tfstate.tflock", "prod/damso.lock"]
    assert events[-1] == ("removed Terraform lock files left by an interrupted run: "
                          "prod/agent.tfstate.tflock, prod/web.tfstate.tflock")  # fmt: skip


def test_describe_says_how_long_ago():
    since = (datetime.now(timezone.utc) - timedelta(minutes=5)).isoformat(timespec="seconds")
    text = lock.describe({"command": "deploy", "holder": "a@b", "pid": 7, "since": since})
    assert text == f"deploy by a@b (pid 7) since {since} (5 min ago)"


def lose_first_answer(client, operation: str, perform):
    """A botocore hook on client: the first `operation` request is performed (by another client,
    as the server would) and then its connection closes before the answer, so botocore retries it."""
    from botocore.exceptions import ConnectionClosedError

    calls, seen = [], {}

    def keep_params(params: dict, **kwargs):
        seen.update(params)

    def hook(request, **kwargs):
        calls.append(request.url)
        if len(calls) == 1:
            perform(seen)
            raise ConnectionClosedError(endpoint_url=request.url)
        return None

    client.meta.events.register(f"before-parameter-build.s3.{operation}", keep_params)
    client.meta.events.register_first(f"before-send.s3.{operation}", hook)
    return calls


@pytest.fixture
def retrying_s3(s3):
    """An S3 client made as damso makes them (its retry configuration), in the same moto."""
    from damso_ops.aws import AwsEndpoint

    return AwsEndpoint("ap-northeast-2").client("s3")


def test_a_lock_whose_put_answer_was_lost_is_ours(s3, retrying_s3):
    calls = lose_first_answer(retrying_s3, "PutObject", lambda params: s3.put_object(**params))
    held = lock.acquire(retrying_s3, BUCKET, "prod", "deploy")
    assert len(calls) == 2  # botocore retried, and the retry met our own lock (412)
    assert lock.read(s3, BUCKET, "prod")["token"] == held.info["token"]
    assert lock.release(retrying_s3, held) and lock.read(s3, BUCKET, "prod") is None


def test_a_release_whose_delete_answer_was_lost_releases(s3, retrying_s3):
    held = lock.acquire(retrying_s3, BUCKET, "prod", "deploy")
    calls = lose_first_answer(retrying_s3, "DeleteObject", lambda params: s3.delete_object(**params))
    assert lock.release(retrying_s3, held)
    assert len(calls) == 2 and lock.read(s3, BUCKET, "prod") is None
    assert lock.acquire(s3, BUCKET, "prod", "deploy")  # nothing left that blocks the next deploy

