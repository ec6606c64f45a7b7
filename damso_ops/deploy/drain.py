"""Take an instance out of its load balancer's target groups while its containers are replaced.

Only environments with the edge stack have target groups. The groups an instance is in
are found by asking each of the VPC's target groups (no Terraform output is needed).

1. The instance is deregistered from every group it is in; the load balancer stops sending
   it new requests.
2. damso waits the group's deregistration delay, at most roles.<role>.drain_timeout, for
   the requests in flight to finish. It waits the whole time: AWS shows the target as
   "draining" until the delay ends even when its last connection closed earlier, so
   there is nothing to watch that ends it sooner (and the emulator drops the target at once).
3. The containers are replaced (inside the `with`).
4. The instance is registered again, and damso waits until every group reports it
   "healthy" (its health check passed), at most the role's health_timeout: only then is
   the next instance of the role drained, so that the load balancer never has none.
   A target that does not turn healthy stops the rollout (the health check's path, port
   or status codes may not match what the host serves).

When the move fails, the instance is registered again without the health wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext

from damso_ops.deploy.outputs import StackOutputs
from damso_ops.deploy.target import Target
from damso_ops.errors import DamsoError
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


def group_name(arn: str) -> str:
    """arn:...:targetgroup/NAME/ID → NAME."""
    return arn.rsplit("/", 2)[-2]


def target_state(elbv2, arn: str, instance: str, port: int) -> str:
    """The instance's state in the group: healthy, initial, unhealthy, draining, unused, ..."""
    found = elbv2.describe_target_health(TargetGroupArn=arn, Targets=[{"Id": instance, "Port": port}])
    states = [d["TargetHealth"]["State"] for d in found["TargetHealthDescriptions"] if d["Target"]["Id"] == instance]
    return states[0] if states else "unused"


@contextmanager
def drained(elbv2, vpc_id: str, instance: str, cap: float, on_event: Event, *, back_within: float,
            poll: float = 5.0, sleep: Callable[[float], None] = time.sleep) -> Iterator[None]:  # fmt: skip
    """Out of every target group while inside, after the drain; back in afterwards, and healthy
    there before this returns (also registered again when the move failed, without the wait)."""
    groups = groups_of(elbv2, vpc_id, instance)
    for arn, port, _ in groups:
        elbv2.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": instance, "Port": port}])
    if groups:
        limit = max(min(delay, cap) for _, _, delay in groups)
        names = ", ".join(group_name(arn) for arn, _, _ in groups)
        on_event("drain", f"{instance} out of {names}; draining {limit:g} s")
        sleep(limit)  # the connections still open after it are cut, as with the group's own delay
    ok = False
    try:
        yield
        ok = True
    finally:
        for arn, port, _ in groups:
            elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": instance, "Port": port}])
            on_event("drain", f"{instance} back in {group_name(arn)}")
    if ok:
        for arn, port, _ in groups:
            _healthy_in(elbv2, arn, instance, port, back_within, poll, on_event)


def _healthy_in(elbv2, arn: str, instance: str, port: int, timeout: float, poll: float, on_event: Event) -> None:
    last = []

    def healthy() -> bool | None:
        last[:] = [target_state(elbv2, arn, instance, port)]
        return True if last[0] == "healthy" else None

    try:
        wait_for(healthy, timeout=timeout, interval=poll, what=f"{instance} healthy in {group_name(arn)}")
    except TimeoutError:
        raise DamsoError(
            f"{instance} is {last[0] if last else 'not reported'} in target group {group_name(arn)} "
            f"{timeout:g} s after it was registered again, so its other instances were not drained.",
            hint="Check that the group's health check (path, port, status codes in terraform/modules/edge) "
            "matches what the host serves.",
        ) from None
    on_event("drain", f"{instance} healthy in {group_name(arn)}")


def drainer(target: Target, outputs: StackOutputs, on_event: Event):
    """(role, instance) → a context that keeps the instance out of its load balancer, for
    environments with an edge stack; otherwise a no-op."""
    if "edge" not in target.env.stacks or "shared" not in outputs:
        return lambda role, instance: nullcontext()
    elbv2, vpc = target.aws.client("elbv2"), outputs.vpc_id
    poll = 0.5 if target.aws.emulated else 5.0

    def drain(role: str, instance: str):
        settings = target.env.roles[role]
        return drained(elbv2, vpc, instance, settings.drain_timeout, on_event, back_within=settings.health_timeout, poll=poll)

    return drain
