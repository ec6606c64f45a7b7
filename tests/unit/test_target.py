"""The Terraform state bucket damso makes before any stack, against in-process moto."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from damso_ops.deploy.target import Target
from tests.support.moto_env import ACCOUNT, STATE

SANDBOX_TOML = """
[environments.lab]
sandbox = true
region = "us-east-1"
"""


def lifecycle(s3, bucket: str) -> dict:
    return {rule["ID"]: rule for rule in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}


def test_a_real_envs_state_bucket_refuses_plain_http_and_expires_old_versions(make_config, aws):
    target = Target(make_config(""), "prod", aws)
    assert target.ensure_state_bucket() is True
    s3 = aws.client("s3")
    assert target.state_bucket == STATE
    assert s3.get_bucket_versioning(Bucket=STATE)["Status"] == "Enabled"
    (statement,) = json.loads(s3.get_bucket_policy(Bucket=STATE)["Policy"])["Statement"]
    assert statement == {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{STATE}", f"arn:aws:s3:::{STATE}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    rules = lifecycle(s3, STATE)
    assert set(rules) == {"expire-noncurrent-versions", "remove-expired-delete-markers"}
    assert all(r["Status"] == "Enabled" and r["Filter"] in ({}, {"Prefix": ""}) for r in rules.values())
    assert rules["expire-noncurrent-versions"]["NoncurrentVersionExpiration"]["NoncurrentDays"] == 90
    assert rules["expire-noncurrent-versions"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    assert rules["remove-expired-delete-markers"]["Expiration"] == {"ExpiredObjectDeleteMarker": True}
    assert target.ensure_state_bucket() is False  # made once
    # Requests over TLS (all of boto3's here) still work; tests/unit/conftest.py lets moto
    # evaluate the SecureTransport condition the way AWS does for them.
    s3.put_object(Bucket=STATE, Key="prod/shared.tfstate", Body=b"{}")
    assert s3.get_object(Bucket=STATE, Key="prod/shared.tfstate")["Body"].read() == b"{}"


def test_the_sandbox_state_bucket_has_no_policy_but_the_same_lifecycle(make_config, aws):
    """moto evaluates no policy condition, so a TLS-only policy would refuse every request there."""
    target = Target(make_config(SANDBOX_TOML), "lab", aws)
    assert target.ensure_state_bucket() is True
    s3 = aws.client("s3")
    bucket = f"unit-lab-tfstate-{ACCOUNT}"
    with pytest.raises(ClientError) as info:
        s3.get_bucket_policy(Bucket=bucket)
    assert info.value.response["Error"]["Code"] == "NoSuchBucketPolicy"
    assert set(lifecycle(s3, bucket)) == {"expire-noncurrent-versions", "remove-expired-delete-markers"}


def test_an_existing_state_bucket_is_left_as_it_is(make_config, aws):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=STATE)
    assert Target(make_config(""), "prod", aws).ensure_state_bucket() is False
    with pytest.raises(ClientError):
        s3.get_bucket_policy(Bucket=STATE)
