"""`damso dev gpu start` plans and applies the gpu-dev stack only under the environment's lock
(deploy/planning.py): while a deploy holds it, start waits; with no wait allowed, it refuses
and runs no Terraform. Real lock over in-process moto S3; Terraform is the recording fake."""

from __future__ import annotations

import os

import pytest

from damso_ops.deploy import lock, stackops
from damso_ops.deploy.target import Target
from damso_ops.hosts import devbox
from tests.support.fake_terraform import FakeTerraform
from tests.support.moto_env import STATE, put_state

BOX = '[environments.prod.gpu_dev.alice]\nami = "ami-0abcdef1234567890"\n'
SHARED = {"vpc_id": "vpc-0unit", "vpc_cidr": "10.9.0.0/16", "artifact_bucket": "unit-artifacts",
          "public_subnet_ids": ["subnet-pub"], "private_subnet_ids": ["subnet-priv"]}  # fmt: skip


@pytest.fixture
def setup(aws, make_config, monkeypatch, tmp_path):
    monkeypatch.setenv("DAMSO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TF_PLUGIN_CACHE_DIR", str(tmp_path / "plugins"))
    s3 = aws.client("s3")
    fake = FakeTerraform({"gpu-dev": ["aws_instance.box[\"alice\"]"]}, {"gpu-dev": {"instance_ids": {"alice": "i-0alice"}}},
                         on_state=lambda stack, outputs: put_state(s3, stack, outputs))  # fmt: skip
    monkeypatch.setattr(stackops, "run", fake)
    put_state(s3, "shared", SHARED)  # deployed: the boxes live in its network
    s3.put_bucket_versioning(Bucket=STATE, VersioningConfiguration={"Status": "Enabled"})
    return Target(make_config(BOX), "prod", aws), s3, fake


def test_dev_gpu_start_waits_for_a_deploy_that_holds_the_lock(setup):
    target, s3, fake = setup
    deploy = lock.acquire(s3, STATE, "prod", "deploy")
    events = []

    def on_event(phase: str, message: str) -> None:
        events.append((phase, message))
        if phase == "lock" and message.startswith("waiting for deploy by"):
            assert fake.commands == []  # nothing planned while the deploy holds the lock
            lock.release(s3, deploy)  # the deploy ends

    result = devbox.ensure_stack(target, on_event, confirm=lambda changes: False, lock_timeout=60)
    waited = [m for p, m in events if p == "lock" and m.startswith("waiting for ")]
    assert len(waited) == 1 and waited[0].startswith(f"waiting for deploy by {lock.holder_name()} (pid {os.getpid()})")
    assert f"prod locked for dev gpu start by {lock.holder_name()} (pid {os.getpid()})" in [m for p, m in events]
    assert fake.log == ["init gpu-dev", "plan gpu-dev", "apply gpu-dev"]
    assert (result.applied, result.instance_ids) == (True, {"alice": "i-0alice"})
    assert lock.read(s3, STATE, "prod") is None  # released after the apply


def test_dev_gpu_start_with_no_lock_timeout_refuses_and_runs_no_terraform(setup):
    target, s3, fake = setup
    lock.acquire(s3, STATE, "prod", "deploy")
    with pytest.raises(lock.LockHeld) as exc:
        devbox.ensure_stack(target, lambda phase, message: None, confirm=lambda changes: True, lock_timeout=0)
    assert exc.value.message.startswith("prod is locked: deploy by ")
    assert fake.commands == []
