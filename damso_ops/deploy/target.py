"""The environment a command works on: its config, its AWS endpoint, its buckets.

Made once per command at the edge (the CLI) and passed in; it holds the one
boto3 session of the command (see aws.AwsEndpoint).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from damso_ops import sandbox
from damso_ops.aws import AwsEndpoint
from damso_ops.config import Config, Environment
from damso_ops.deploy.store import Layout, ReleaseStore


@dataclass(frozen=True)
class Target:
    cfg: Config
    env_name: str
    aws: AwsEndpoint

    @property
    def env(self) -> Environment:
        return self.cfg.environments[self.env_name]

    @property
    def state_dir(self) -> Path:
        return self.cfg.state_dir

    @property
    def keys(self) -> Layout:
        return Layout(self.env_name)

    @cached_property
    def account(self) -> str:
        return self.aws.client("sts").get_caller_identity()["Account"]

    @property
    def state_bucket(self) -> str:
        """Terraform state and damso's lock (made by damso before any stack)."""
        return self.env.state_bucket or f"{self.cfg.project.name}-{self.env_name}-tfstate-{self.account}"

    @property
    def artifact_bucket(self) -> str:
        """Releases and reports (made by the shared stack, see terraform/stacks/shared)."""
        return f"{self.cfg.project.name}-{self.env_name}-artifacts-{self.account}"

    def store(self, bucket: str | None = None) -> ReleaseStore:
        return ReleaseStore(self.aws.client("s3"), bucket or self.artifact_bucket, self.env_name)

    def bucket_exists(self, name: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.aws.client("s3").head_bucket(Bucket=name)
            return True
        except ClientError:
            return False

    def ensure_state_bucket(self) -> bool:
        """Create the Terraform state bucket if missing: versioned, encrypted, private, old
        versions expiring, and (outside the sandbox) refusing every request without TLS.
        A bucket that exists already (made earlier, or named by state_bucket) is left as it is."""
        name = self.state_bucket
        if self.bucket_exists(name):
            return False
        s3 = self.aws.client("s3")
        region = self.aws.region
        kwargs = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=name, **kwargs)
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_encryption(
            Bucket=name,
            ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
        )
        blocks = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={k: True for k in blocks})
        s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration=state_bucket_lifecycle())
        if not self.env.sandbox:  # the emulator evaluates no condition: the policy would refuse everything
            s3.put_bucket_policy(Bucket=name, Policy=json.dumps(tls_only_policy(name, s3.meta.partition)))
        return True


# What the shared stack's release bucket has too (terraform/modules/artifacts): old state
# versions (every apply writes one) are kept 90 days to recover from, then expire.
NONCURRENT_VERSION_DAYS = 90
ABORT_MULTIPART_DAYS = 7


def state_bucket_lifecycle() -> dict:
    return {
        "Rules": [
            {
                "ID": "expire-noncurrent-versions",
                "Status": "Enabled",
                "Filter": {},
                "NoncurrentVersionExpiration": {"NoncurrentDays": NONCURRENT_VERSION_DAYS},
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": ABORT_MULTIPART_DAYS},
            },
            {
                "ID": "remove-expired-delete-markers",
                "Status": "Enabled",
                "Filter": {},
                "Expiration": {"ExpiredObjectDeleteMarker": True},
            },
        ]
    }


def tls_only_policy(bucket: str, partition: str = "aws") -> dict:
    """Deny every S3 action on the bucket and its objects to a request made without TLS."""
    arn = f"arn:{partition}:s3:::{bucket}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [arn, f"{arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


def connect(cfg: Config, env_name: str) -> Target:
    """The target of env_name; a sandbox environment starts (or reuses) the emulator."""
    env = cfg.environment(env_name)
    if env.sandbox:
        return Target(cfg, env_name, AwsEndpoint(env.region, sandbox.endpoint(cfg.state_dir)))
    return Target(cfg, env_name, AwsEndpoint(env.region))


def offline(cfg: Config, env_name: str) -> Target:
    """A target for checks that need no AWS call (nothing is started or reached)."""
    return Target(cfg, env_name, AwsEndpoint(cfg.environment(env_name).region))
