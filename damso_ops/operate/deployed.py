"""What is deployed in an environment, found without Terraform: its buckets and hosts.

  the role stacks' Terraform outputs   read from their state objects in the state bucket
                                       (see deploy/store.py for the keys): no terraform init
  what each host runs                  its report in the artifact bucket (reconcile unit)
  what should run                      the pointer and the release's manifest.json
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from damso_ops.deploy import stacks
from damso_ops.deploy.store import Layout, ReleaseStore
from damso_ops.deploy.target import Target
from damso_ops.errors import DamsoError


@dataclass(frozen=True)
class Deployed:
    """An environment's buckets and hosts, from the stacks' state."""

    env: str
    state_bucket: str
    artifact_bucket: str
    hosts: dict[str, dict]  # role → {"instance_id", "private_ip", "public_ip"}
    missing: tuple[str, ...] = ()  # configured roles with no deployed stack

    def instances(self) -> dict[str, str]:
        """role → instance id, the shape converge.wait_healthy takes."""
        return {role: out["instance_id"] for role, out in self.hosts.items()}


def state_outputs(s3, state_bucket: str, env: str, stack: str) -> dict | None:
    """A stack's outputs as `terraform output` gives them, read from its state object."""
    key = Layout(env).state(stack)
    body = ReleaseStore(s3, state_bucket, env).read(key)
    if body is None:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        raise DamsoError(f"The Terraform state s3://{state_bucket}/{key} is not JSON.") from None
    if not data.get("resources") and not data.get("outputs"):
        return None  # destroyed
    return {name: out.get("value") for name, out in data.get("outputs", {}).items()}



def find_deployed(target: Target) -> Deployed:
    """An environment's buckets and hosts, from the stacks' state."""
    bucket = target.state_bucket
    never = DamsoError(f"{target.env_name} was never deployed (no state bucket {bucket}).",
                       hint=f"Run 'damso deploy {target.env_name}'.")  # fmt: skip
    if not target.bucket_exists(bucket):
        raise never
    s3 = target.aws.client("s3")
    shared = state_outputs(s3, bucket, target.env_name, "shared") or {}
    if not shared.get("artifact_bucket"):
        raise never
    hosts, missing = {}, []
    for stack, (role, _) in stacks.roles_by_stack(target.env).items():
        out = state_outputs(s3, bucket, target.env_name, stack)
        if out and out.get("instance_id"):
            hosts[role] = {k: out.get(k) for k in ("instance_id", "private_ip", "public_ip")}
        else:
            missing.append(role)
    return Deployed(target.env_name, bucket, shared["artifact_bucket"], hosts, tuple(sorted(missing)))
