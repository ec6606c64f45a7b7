"""Take an instance out of its load balancer's target groups while its containers are replaced.

Only environments with the edge stack have target groups. The groups an instance is in
are found by asking each of the VPC's target groups (no Terraform output is needed);
the instance is deregistered, damso waits for the group's deregistration delay (capped by
roles.<role>.drain_timeout) or until the target is gone, then registers it again once
it reports healthy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext

from damso_ops.deploy.outputs import StackOutputs
from damso_ops.deploy.target import Target
from damso_ops.timing import wait_for

Event = Callable[[str, str], None]


def groups_of(elbv2, vpc_id: str, instance: str) -> list[tuple[str, int, int]]:
    """(target group ARN, port, deregistration delay) of every group in the VPC that has the instance."""
    found = []
    for page in elbv2.get_paginator("describe_target_groups").paginate():
        for group in page["TargetGroups"]:
            if group.get("VpcId") != vpc_id or group.get("TargetType", "instance") != "instance":
                continue
            arn = group["TargetGroupArn"]
            targets = elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
            for t in targets:
                if t["Target"]["Id"] == instance:
                    attrs = elbv2.describe_target_group_attributes(TargetGroupArn=arn)["Attributes"]
                    delay = next((int(a["Value"]) for a in attrs if a["Key"] == "deregistration_delay.timeout_seconds"), 300)
                    found.append((arn, int(t["Target"].get("Port") or group.get("Port") or 0), delay))
    return found


@contextmanager
def drained(elbv2, vpc_id: str, instance: str, cap: float, on_event: Event, poll: float = 5.0) -> Iterator[None]:
    """Out of every target group while inside; back in afterwards (also when the move failed)."""
    groups = groups_of(elbv2, vpc_id, instance)
    for arn, port, delay in groups:
        elbv2.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": instance, "Port": port}])
        limit = min(delay, cap)
        on_event("drain", f"{instance} out of {arn.rsplit('/', 2)[-2]}; draining up to {limit:g} s")

        def gone(arn=arn) -> bool | None:
            health = elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
            return True if not [h for h in health if h["Target"]["Id"] == instance] else None

        try:
            wait_for(gone, timeout=limit, interval=poll, what=f"{instance} drained")
        except TimeoutError:
            pass  # the cap: connections still open after it are cut, as with the group's own delay
    try:
        yield
    finally:
        for arn, port, _ in groups:
            elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": instance, "Port": port}])
            on_event("drain", f"{instance} back in {arn.rsplit('/', 2)[-2]}")


def drainer(target: Target, outputs: StackOutputs, on_event: Event):
    """(role, instance) → a context that keeps the instance out of its load balancer, for
    environments with an edge stack; otherwise a no-op."""
    if "edge" not in target.env.stacks or "shared" not in outputs:
        return lambda role, instance: nullcontext()
    elbv2, vpc = target.aws.client("elbv2"), outputs.vpc_id
    return lambda role, instance: drained(elbv2, vpc, instance, target.env.roles[role].drain_timeout, on_event)
