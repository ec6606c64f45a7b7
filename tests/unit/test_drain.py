"""Draining an instance from its target groups (deploy/drain.py) against in-process moto's ELBv2,
and the ALB's health checks against what the shipped compose files check on the hosts."""

from __future__ import annotations

import re

import pytest

from damso_ops import paths
from damso_ops.deploy import drain
from damso_ops.errors import DamsoError


@pytest.fixture
def group(aws):
    """A VPC with two running instances, both targets of an instance target group (delay 30 s)."""
    ec2, elbv2 = aws.client("ec2"), aws.client("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    instances = [i["InstanceId"] for i in ec2.run_instances(ImageId="ami-1e749f67", MinCount=2, MaxCount=2,
                                                                SubnetId=subnet)["Instances"]]  # fmt: skip
    arn = elbv2.create_target_group(Name="unit-prod-api", Protocol="HTTP", Port=8080, VpcId=vpc,
                                    HealthCheckPath="/healthz")["TargetGroups"][0]["TargetGroupArn"]  # fmt: skip
    elbv2.modify_target_group_attributes(TargetGroupArn=arn, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "30"}])
    elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": i, "Port": 8080} for i in instances])
    other = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]  # another environment's group: never touched
    elbv2.create_target_group(Name="other-api", Protocol="HTTP", Port=8080, VpcId=other)
    return elbv2, vpc, arn, instances


def registered(elbv2, arn: str) -> set[str]:
    return {d["Target"]["Id"] for d in elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]}


@pytest.mark.parametrize(("cap", "waited"), [(2, 2), (100, 30)])
def test_out_of_the_group_for_the_drain_then_back_and_healthy(group, cap, waited):
    elbv2, vpc, arn, (first, second) = group
    slept, events = [], []
    assert drain.groups_of(elbv2, vpc, first) == [(arn, 8080, 30)]
    with drain.drained(elbv2, vpc, first, cap, lambda p, m: events.append(m), back_within=5, poll=0.01, sleep=slept.append):
        assert registered(elbv2, arn) == {second}  # out while its containers are replaced
        assert slept == [waited]  # the group's delay, at most drain_timeout
    assert registered(elbv2, arn) == {first, second}
    assert drain.target_state(elbv2, arn, first, 8080) == "healthy"
    assert events == [f"{first} out of unit-prod-api; draining {waited} s", f"{first} back in unit-prod-api",
                      f"{first} healthy in unit-prod-api"]  # fmt: skip


def test_a_failed_move_puts_the_instance_back_without_waiting(group):
    elbv2, vpc, arn, (first, second) = group
    with pytest.raises(RuntimeError, match="the move failed"):
        with drain.drained(elbv2, vpc, first, 5, lambda p, m: None, back_within=5, poll=0.01, sleep=lambda s: None):
            raise RuntimeError("the move failed")
    assert registered(elbv2, arn) == {first, second}


class NeverHealthy:
    """moto's client, except that the load balancer's health check never passes (it reports 'unhealthy')."""

    def __init__(self, client):
        self.client = client

    def __getattr__(self, name):
        return getattr(self.client, name)

    def describe_target_health(self, **kwargs):
        found = self.client.describe_target_health(**kwargs)
        if "Targets" in kwargs:
            for d in found["TargetHealthDescriptions"]:
                d["TargetHealth"] = {"State": "unhealthy", "Reason": "Target.ResponseCodeMismatch"}
        return found


def test_an_instance_the_load_balancer_never_finds_healthy_stops_the_rollout(group):
    elbv2, vpc, arn, (first, _) = group
    with pytest.raises(DamsoError) as exc:
        with drain.drained(NeverHealthy(elbv2), vpc, first, 0, lambda p, m: None, back_within=0.05, poll=0.01,
                           sleep=lambda s: None):  # fmt: skip
            pass
    assert exc.value.message == (f"{first} is unhealthy in target group unit-prod-api 0.05 s after it was registered again, "
                                 "so its other instances were not drained.")  # fmt: skip
    assert "health check (path, port, status codes" in exc.value.hint


def _health_checks() -> dict[str, dict[str, str]]:
    """The edge module's target groups: name → port, health check path and matcher."""
    text = (paths.data_dir("terraform") / "modules" / "edge" / "main.tf").read_text()
    found = {}
    for name, body in re.findall(r'resource "aws_lb_target_group" "(\w+)" \{(.*?)\n\}', text, flags=re.S):
        check = re.search(r"health_check \{(.*?)\}", body, flags=re.S)
        if check:
            fields = dict(re.findall(r'(\w+)\s*=\s*"([^"]*)"', check.group(1)))
            found[name] = {"port": re.search(r"\bport\s*=\s*(\d+)", body).group(1), **fields}
    return found


def test_the_albs_health_checks_ask_what_the_hosts_containers_serve():
    """The api's and the web's target groups check the port and path the role's compose file
    checks itself, and accept the status codes it accepts."""
    checks = _health_checks()
    assert set(checks) == {"api", "web"}
    compose = paths.data_dir("templates") / "compose"
    api = (compose / "api.yml.j2").read_text()
    assert checks["api"]["port"] == "8080" and '"8080:8080"' in api  # the host publishes the container's port
    assert f'http://127.0.0.1:{checks["api"]["port"]}{checks["api"]["path"]}' in api and checks["api"]["matcher"] == "200"  # wget -q: 2xx
    web = (compose / "web.yml.j2").read_text()
    assert "network_mode: host" in web and f'http://127.0.0.1:{checks["web"]["port"]}{checks["web"]["path"]}' in web
    accepted = re.search(r"\[([0-9, ]+)\]\.includes\(r\.statusCode\)", web).group(1)
    assert sorted(checks["web"]["matcher"].split(",")) == sorted(c.strip() for c in accepted.split(","))
