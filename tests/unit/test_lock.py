"""The deploy lock against moto's in-process S3: atomic create, refuse, wait, release, leftovers."""

from __future__ import annotations

import contextlib
import json
from datetime import datetime, timedelta, timezone

import pytest

from damso_ops.deploy import lock, tflocks
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



# ---- Terraform's own lock -------------------------------------------------------------

TF_LOCK_OUTPUT = """Acquiring state lock. This may take a few moments...

Error: Error acquiring the state lock

Error message: operation error S3: PutObject, https response error StatusCode: 412, PreconditionFailed
Lock Info:
  ID:        2f6c1d7e-0000-4000-8000-1a2b3c4d5e6f
  Path:      {bucket}/prod/web.tfstate
  Operation: OperationTypeApply
  Who:       {who}
  Version:   1.11.4
  Created:   {created}
  Info:
"""


@pytest.fixture
def tf_apply(monkeypatch, tmp_path, s3):
    """stackops.apply over a stand-in for the runner: the first apply finds Terraform's lock
    written (by `who`, at `created`) and fails as Terraform does; later ones succeed."""
    from damso_ops.deploy import stackops, workspace
    from damso_ops.errors import CommandError
    from damso_ops.runner import Result

    calls = []

    def start(who: str, created: datetime):
        def run(command, **kwargs):
            calls.append(command.argv)
            if len(calls) == 1:
                stamp = created.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                s3.put_object(Bucket=BUCKET, Key="prod/web.tfstate.tflock", Body=json.dumps(
                    {"ID": "2f6c1d7e", "Operation": "OperationTypeApply", "Who": who, "Created": stamp}).encode())
                raise CommandError("terraform apply", 1, TF_LOCK_OUTPUT.format(bucket=BUCKET, who=who, created=stamp))
            return Result(command, 0, "Apply complete!")

        monkeypatch.setattr(stackops, "run", run)
        monkeypatch.setattr(stackops, "using_cache", lambda env: contextlib.nullcontext())
        ws = workspace.Workspace(tmp_path, {})

        def recover(stack, since):
            return tflocks.remove_own(s3, BUCKET, "prod", stack, since, lock.holder_name())

        return lambda: stackops.apply(ws, "web", recover)

    start.calls = calls
    return start


def test_an_apply_blocked_by_its_own_lost_lock_write_recovers(s3, tf_apply):
    apply = tf_apply(lock.holder_name(), datetime.now(timezone.utc) + timedelta(seconds=1))
    apply()
    assert len(tf_apply.calls) == 2  # applied again, once, after removing the leftover
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="prod/web.tfstate.tflock")


def test_an_apply_blocked_by_another_lock_names_it_and_how_to_clear_it(s3, tf_apply, tmp_path):
    from damso_ops.errors import DamsoError

    apply = tf_apply("alice@laptop", datetime.now(timezone.utc))
    with pytest.raises(DamsoError) as exc:
        apply()
    assert exc.value.message == (f"terraform apply of web is blocked by Terraform's lock "
                                 f"s3://{BUCKET}/prod/web.tfstate.tflock (taken by alice@laptop).")  # fmt: skip
    assert f"'cd {tmp_path}/stacks/web && terraform force-unlock -force 2f6c1d7e-0000-4000-8000-1a2b3c4d5e6f'" in exc.value.hint
    assert len(tf_apply.calls) == 1 and lock.read(s3, BUCKET, "prod") is None
    assert s3.get_object(Bucket=BUCKET, Key="prod/web.tfstate.tflock")  # someone else's lock stays


def test_an_older_lock_of_this_machine_is_not_taken_for_this_apply(s3, tf_apply):
    from damso_ops.errors import DamsoError

    apply = tf_apply(lock.holder_name(), datetime.now(timezone.utc) - timedelta(minutes=5))
    with pytest.raises(DamsoError, match="blocked by Terraform's lock"):
        apply()
