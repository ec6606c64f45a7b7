"""What is deployed in an environment, found without Terraform: its buckets and hosts.

  the role stacks' Terraform outputs   read from their state objects in the state bucket
                                       (see deploy/store.py for the keys): no terraform init
  what each host runs                  its report in the artifact bucket (reconcile unit)
  what should run                      the pointer and the release's manifest.json
"""

from __future__ import annotations

from dataclasses import dataclass

from damso_ops.deploy import stacks
from damso_ops.deploy.outputs import state_outputs
from damso_ops.deploy.target import Target
from damso_ops.errors import DamsoError


@dataclass(frozen=True)
class Deployed:
    """An environment's buckets and hosts, from the stacks' state."""

    env: str
    state_bucket: str
    artifact_bucket: str
    hosts: dict[str, list[dict]]  # role → [{"instance_id", "private_ip", "public_ip"}] (count > 1: several)
    missing: tuple[str, ...] = ()  # configured roles with no deployed stack

    def instances(self) -> dict[str, list[str]]:
        """role → its instance ids, the shape converge and rollouts take."""
        return {role: [h["instance_id"] for h in hosts] for role, hosts in self.hosts.items()}


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
            hosts[role] = _hosts(out)
        else:
            missing.append(role)
    return Deployed(target.env_name, bucket, shared["artifact_bucket"], hosts, tuple(sorted(missing)))


def _hosts(out: dict) -> list[dict]:
    """A role stack's instances: instance_ids/private_ips/public_ips (count > 1), else the single ones."""
    ids = out.get("instance_ids") or [out["instance_id"]]
    private = out.get("private_ips") or [out.get("private_ip")]
    public = out.get("public_ips") or [out.get("public_ip")]
    return [{"instance_id": i, "private_ip": (private + [None] * len(ids))[n], "public_ip": (public + [None] * len(ids))[n]}
            for n, i in enumerate(ids)]  # fmt: skip
