"""EC2 instances as damso shows and steers them (LiveKit server, GPU dev boxes):
state, addresses, uptime; start and stop with EC2's waiters."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from damso_ops.errors import DamsoError

Event = Callable[[str, str], None]  # (phase, message)


@dataclass(frozen=True)
class Instance:
    id: str
    state: str
    instance_type: str
    public_ip: str | None
    private_ip: str | None
    launched: datetime | None  # the last start, on AWS

    @classmethod
    def from_api(cls, data: Mapping) -> Instance:
        return cls(data["InstanceId"], data["State"]["Name"], data["InstanceType"], data.get("PublicIpAddress"),
                   data.get("PrivateIpAddress"), data.get("LaunchTime"))  # fmt: skip

    def uptime_seconds(self, now: datetime | None = None) -> int | None:
        if self.state != "running" or not self.launched:
            return None
        return max(0, int(((now or datetime.now(UTC)) - self.launched).total_seconds()))


def describe(ec2, instance_id: str) -> Instance:
    (reservation,) = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return Instance.from_api(reservation["Instances"][0])


def _wait(ec2, waiter: str, instance_id: str, delay: int) -> None:
    from botocore.exceptions import WaiterError

    try:
        ec2.get_waiter(waiter).wait(InstanceIds=[instance_id], WaiterConfig={"Delay": delay, "MaxAttempts": 120})
    except WaiterError as exc:
        raise DamsoError(f"Instance {instance_id} did not reach the expected state: {exc}.") from None


def set_running(ec2, instance: Instance, running: bool, on_event: Event, delay: int = 5) -> Instance:
    """Start or stop an instance and wait with EC2's waiters until it is there."""
    if running:
        if instance.state == "stopping":
            on_event("wait", f"{instance.id} is stopping; starting it once it has stopped")
            _wait(ec2, "instance_stopped", instance.id, delay)
        if instance.state != "running":
            if instance.state != "pending":
                ec2.start_instances(InstanceIds=[instance.id])
            on_event("start", f"{instance.id}: waiting until running")
            _wait(ec2, "instance_running", instance.id, delay)
    elif instance.state != "stopped":
        if instance.state == "pending":
            _wait(ec2, "instance_running", instance.id, delay)
        if instance.state != "stopping":
            ec2.stop_instances(InstanceIds=[instance.id])
        on_event("stop", f"{instance.id}: waiting until stopped")
        _wait(ec2, "instance_stopped", instance.id, delay)
    return describe(ec2, instance.id)
