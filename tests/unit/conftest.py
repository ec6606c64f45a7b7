"""Fixtures of the unit tests of the middle: in-process moto with fake credentials, a config
written into a temporary project folder, an environment's release store."""

from __future__ import annotations

import functools
import json

import pytest

from damso_ops import config
from damso_ops.aws import AwsEndpoint
from damso_ops.deploy.store import ReleaseStore
from tests.support.moto_env import ARTIFACTS, BASE_TOML, REGION


@functools.lru_cache(maxsize=1)
def _model_loader():
    import botocore.loaders

    return botocore.loaders.create_loader()


@pytest.fixture
def aws(monkeypatch, tmp_path):
    """moto in this process, fake credentials, no profile or endpoint from the caller's shell.
    Every boto3 session shares one loader of botocore's service models: each test's
    AwsEndpoint makes a session of its own, which would parse the models again."""
    import botocore.session

    monkeypatch.setattr(botocore.session, "create_loader", lambda *args, **kwargs: _model_loader())
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_SHARED_CREDENTIALS_FILE",
                 "DAMSO_STATE_DIR", "DAMSO_CONFIG", "DAMSO_TF_MIRROR"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": REGION,
                        "AWS_DEFAULT_REGION": REGION, "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config")}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("moto.s3.models.FakeBucket.get_permission", _permission_over_tls)
    from moto import mock_aws

    with mock_aws():
        yield AwsEndpoint(REGION)


TLS_ONLY = {"Bool": {"aws:SecureTransport": "false"}}


def _permission_over_tls(bucket, action: str, resource: str):
    """moto's bucket-policy check without the statements that apply only to plain-HTTP requests:
    moto evaluates no condition (a TLS-only policy would deny everything), and every request
    here goes to an https:// endpoint, so on AWS those statements would not apply."""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    if bucket.policy is None:
        return PermissionResult.NEUTRAL
    policy = json.loads(bucket.policy)
    kept = [s for s in policy["Statement"] if s.get("Condition") != TLS_ONLY]
    if not kept:
        return PermissionResult.NEUTRAL
    return IAMPolicy(json.dumps({**policy, "Statement": kept})).is_action_permitted(action, resource)


@pytest.fixture
def make_config(tmp_path):
    """damso.toml of a project in tmp_path/project: BASE_TOML plus the given roles' TOML."""

    def make(roles_toml: str) -> config.Config:
        root = tmp_path / "project"
        root.mkdir(exist_ok=True)
        path = root / "damso.toml"
        path.write_text(BASE_TOML + roles_toml)
        return config.load(path)

    return make


@pytest.fixture
def store(aws):
    """prod's release store over an (empty) artifact bucket."""
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=ARTIFACTS)
    return ReleaseStore(s3, ARTIFACTS, "prod")
