"""The production topology in the sandbox: shared, livekit, api (count = 2), web, agent (a GPU
instance type, placeholder images), edge (ALB, NLB, listeners, target groups, Route53, ACM) and
data (RDS PostgreSQL, an ElastiCache replication group) applied for real against the emulator,
a release rolled out in the waves livekit → api → web → agent with the two api instances drained
one at a time from the ALB's target group, then the whole environment destroyed.

One deployment is shared by the file's tests (they run in order). Hosts converge on this
machine (--converge-local); the two api instances publish ports P0 and P1. A prober plays the
ALB: it asks the emulator which api targets are registered and healthy and sends a request to
each of them, so it sees the drain calls (what the emulator's target group holds, over time)
and that a registered target always answers."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from contextlib import contextmanager

import pytest

from damso_ops import sandbox
from damso_ops.deploy.outputs import state_outputs
from tests.integration.conftest import sandbox_lifetime, write_config
from tests.integration.conftest import sandbox_project as make_sandbox_project
from tests.integration.test_deploy_sandbox import AMI
from tests.integration.test_rollout import port_prefix

pytestmark = pytest.mark.integration

ENV = "topo"
DOMAIN = "topo.test"
ROLES = ("livekit", "api", "web", "agent")
STACKS = {"shared", *ROLES, "edge", "data"}
WAVES = [["livekit"], ["api"], ["web"], ["agent"]]
DRAIN = 2  # roles.api.drain_timeout, seconds (the target group's own delay is 300)
PREFIX = port_prefix(__name__)
COMPOSE = """\
services:
  app:
    image: {{ images["api"] }}
    init: true
{%% if role == "api" %%}    ports: ["127.0.0.1:%s${DAMSO_INSTANCE_INDEX:-0}:8080"]
{%% endif %%}    command: ["/bin/busybox", "sh", "-c", "mkdir -p /www && echo \\"$$APP_MESSAGE\\" > /www/index.html && echo ok > /www/healthz && exec /bin/busybox httpd -f -p 8080 -h /www"]
    env_file: [{{ env_file }}, {{ secrets_file }}]
    healthcheck:
      test: ["CMD", "/bin/busybox", "wget", "-qO-", "http://127.0.0.1:8080/healthz"]
      interval: 1s
      timeout: 2s
      retries: 3
"""


def topo_toml(message: str, zone_id: str, certificate_arn: str) -> str:
    roles = {
        "livekit": {"count": 1, "instance_type": "c7i.xlarge", "env": {}},
        "api": {"count": 2, "instance_type": "t3.medium", "drain_timeout": DRAIN,
                "env": {"REDIS_URL": "${data.redis_url}", "DATABASE_HOST": "${data.postgres_endpoint}"}},
        "web": {"count": 1, "instance_type": "t3.small", "env": {}},
        "agent": {"count": 1, "instance_type": "g5.2xlarge", "volume_size": 200,  # the GPU role; placeholder images
                  "env": {"REDIS_URL": "${data.redis_url}", "API_BASE_URL": "http://${api.private_ip}:8080"}},
    }  # fmt: skip
    text = (f'\n[environments.{ENV}]\nsandbox = true\nregion = "ap-northeast-2"\ndomain = "{DOMAIN}"\n'
            f'zone_id = "{zone_id}"\ncertificate_arn = "{certificate_arn}"\nstacks = ["edge", "data"]\n'
            f"rollout = {json.dumps(WAVES)}\n"
            f'[environments.{ENV}.build_args]\nPUBLIC_URL = "https://{DOMAIN}"\n')  # fmt: skip
    for role, settings in roles.items():
        env = {"APP_MESSAGE": f"{message} from {role}", **settings.pop("env")}
        text += f"\n[environments.{ENV}.roles.{role}]\nami = \"{AMI}\"\nservices = [\"api\"]\n"
        text += 'compose_template = "compose/app.yml.j2"\nhealth_timeout = 30\n'
        text += 'secrets = ["REGISTRY_USERNAME", "REGISTRY_PASSWORD"]\n'
        text += "".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items())
        text += "env = { " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in env.items()) + " }\n"
    return text


class Prober:
    """Every 0.3 s: the api target group's registered targets (the emulator's view) and which of
    them answer a request on the instance's port, like the ALB would send it."""

    def __init__(self, elbv2, group_arn: str, ports: dict[str, int]):
        self.elbv2, self.group_arn, self.ports = elbv2, group_arn, ports
        self.samples: list[tuple[float, frozenset[str], frozenset[str]]] = []  # (time, registered healthy, answered)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def answers(port: int) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    def sample(self) -> tuple[float, frozenset[str], frozenset[str]]:
        health = self.elbv2.describe_target_health(TargetGroupArn=self.group_arn)["TargetHealthDescriptions"]
        registered = frozenset(d["Target"]["Id"] for d in health if d["TargetHealth"]["State"] == "healthy")
        answered = frozenset(i for i in registered if self.answers(self.ports[i]))
        return time.monotonic(), registered, answered

    def _run(self) -> None:
        while not self.stop.is_set() and len(self.samples) < 4000:
            self.samples.append(self.sample())
            self.stop.wait(0.3)

    def __enter__(self) -> "Prober":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


@pytest.fixture(scope="module")
def topo(tmp_path_factory, registry, dockerd, busybox_image, git_root):
    """The project, its emulator with the Route53 zone and the ACM certificate the edge needs
    (made outside damso, as on AWS), and the first deploy of the whole topology."""
    base = tmp_path_factory.mktemp("topology")
    placeholder = topo_toml("one", "Z0000000000000000000", "arn:aws:acm:ap-northeast-2:123456789012:certificate/0")
    project = make_sandbox_project(base, registry, dockerd, git_root, {"compose/app.yml.j2": COMPOSE % PREFIX},
                                   placeholder, {}, build=False)  # fmt: skip
    project.compose_prefix = f"damso-{ENV}-"
    with sandbox_lifetime(project, dockerd.host), stopped_at_the_end(project):
        sandbox.ensure(project.root / ".damso")  # the emulator damso's commands then reuse
        aws = project.aws
        zone = aws.client("route53").create_hosted_zone(Name=f"{DOMAIN}.", CallerReference="topology")
        project.zone_id = zone["HostedZone"]["Id"].rsplit("/", 1)[-1]
        project.certificate_arn = aws.client("acm").request_certificate(
            DomainName=DOMAIN, SubjectAlternativeNames=[f"*.{DOMAIN}"], ValidationMethod="DNS")["CertificateArn"]  # fmt: skip
        configure(project, "one")
        built = project.run("build", "--ref", "main", "api")
        assert built.exit_code == 0, built.output
        started = time.monotonic()
        result, data = deploy(project)
        assert result.exit_code == 0, result.output
        project.first = data
        project.first_output = result.output
        project.first_seconds = time.monotonic() - started
        yield project


@contextmanager
def stopped_at_the_end(project):
    """The emulator stopped by its pid also when the config is what failed (`damso sandbox stop` needs it)."""
    try:
        yield
    finally:
        sandbox.stop(project.root / ".damso")


def configure(project, message: str) -> None:
    write_config(project.root, project.registry.host, project.repos,
                 topo_toml(message, project.zone_id, project.certificate_arn))  # fmt: skip


def deploy(project, *args: str):
    return project.run_json("deploy", ENV, "--yes", "--converge-local", *args)


def state(project, stack: str) -> dict | None:
    return state_outputs(project.aws.client("s3"), project.bucket(f"{ENV}-tfstate"), ENV, stack)


def instances_of(data: dict, role: str) -> list[str]:
    return [i for i, r in data["instances"].items() if r["role"] == role]


def first_time(project, key: str, wanted) -> object:
    """S3's LastModified of the oldest version of an object whose body is `wanted`."""
    s3, bucket = project.aws.client("s3"), project.bucket(f"{ENV}-artifacts")
    times = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=key):
        for v in page.get("Versions", []):
            if v["Key"] == key and wanted(json.loads(s3.get_object(Bucket=bucket, Key=key, VersionId=v["VersionId"])["Body"].read())):
                times.append(v["LastModified"])
    assert times, f"no version of {key} as wanted"
    return min(times)


def api_group(project) -> dict:
    (group,) = [g for g in project.aws.client("elbv2").describe_target_groups()["TargetGroups"]
                if g["TargetGroupName"] == f"demo-{ENV}-api"]  # fmt: skip
    return group


def test_the_whole_topology_applies_against_the_emulator(topo):
    data = topo.first
    assert set(data["stacks"]) == STACKS and all(s["applied"] for s in data["stacks"].values()), data["stacks"]
    assert data["healthy"] and data["rollout"]["waves"] == WAVES and data["rollout"]["state"] == "done"
    aws = topo.aws
    api_ids = state(topo, "api")["instance_ids"]
    assert len(api_ids) == 2
    elbv2 = aws.client("elbv2")
    balancers = {b["LoadBalancerName"]: b["Type"] for b in elbv2.describe_load_balancers()["LoadBalancers"]}
    assert balancers == {f"demo-{ENV}-alb": "application", f"demo-{ENV}-nlb": "network"}
    group = api_group(topo)
    targets = elbv2.describe_target_health(TargetGroupArn=group["TargetGroupArn"])["TargetHealthDescriptions"]
    assert sorted(t["Target"]["Id"] for t in targets) == sorted(api_ids)
    # The health check the ALB makes is what the api hosts serve (path, port, status code).
    assert (group["HealthCheckPath"], group["Matcher"]["HttpCode"], group["Port"]) == ("/healthz", "200", 8080)
    for index in range(2):
        with urllib.request.urlopen(f"http://127.0.0.1:{PREFIX}{index}{group['HealthCheckPath']}", timeout=2) as answer:
            assert str(answer.status) == group["Matcher"]["HttpCode"]
    records = aws.client("route53").list_resource_record_sets(HostedZoneId=topo.zone_id)["ResourceRecordSets"]
    assert {f"{DOMAIN}.", f"api.{DOMAIN}.", f"{ENV}-livekit.{DOMAIN}."} <= {r["Name"] for r in records if r["Type"] == "A"}
    (db,) = aws.client("rds").describe_db_instances()["DBInstances"]
    assert db["Engine"] == "postgres" and db["StorageEncrypted"] and not db["DeletionProtection"]
    (redis,) = aws.client("elasticache").describe_replication_groups()["ReplicationGroups"]
    assert redis["ReplicationGroupId"] == f"demo-{ENV}-redis" and redis["TransitEncryptionEnabled"]  # the production shape
    assert state(topo, "data")["redis_url"].startswith("rediss://")
    print(f"\nfirst deploy of the production topology (seven stacks applied, four waves): {topo.first_seconds:.1f} s")


def test_a_release_moves_through_four_waves_draining_the_api_one_at_a_time(topo):
    configure(topo, "two")
    elbv2 = topo.aws.client("elbv2")
    api_ids = state(topo, "api")["instance_ids"]
    ports = {instance: int(f"{PREFIX}{i}") for i, instance in enumerate(api_ids)}
    group = api_group(topo)
    with Prober(elbv2, group["TargetGroupArn"], ports) as prober:
        time.sleep(0.5)
        result, data = deploy(topo)
    assert result.exit_code == 0, result.output
    assert data["changed"] and data["healthy"] and data["rollout"]["state"] == "done"
    assert not any(s["applied"] for s in data["stacks"].values())
    # The drain calls, as damso made them and as the emulator's target group showed them over time.
    for instance in api_ids:
        assert f"{instance} out of demo-{ENV}-api; draining {DRAIN} s" in result.output
        assert f"{instance} healthy in demo-{ENV}-api" in result.output
    seen = [registered for _, registered, _ in prober.samples]
    assert len(seen) >= 10
    assert seen[0] == frozenset(api_ids) and seen[-1] == frozenset(api_ids)
    alone = [next(iter(r)) for r in seen if len(r) == 1]
    assert set(alone) == set(api_ids), "each api instance was out of the target group on its own at some moment"
    assert frozenset() not in seen, "both api instances were out of the target group at once"
    # Never refused: at every moment a registered target answered.
    refused = [(t, r) for t, r, answered in prober.samples if not answered]
    assert not refused, f"no registered api target answered at {len(refused)} moments"
    # The waves in order: each role's pointer moved after the wave before reported healthy.
    for instance in api_ids:
        with urllib.request.urlopen(f"http://127.0.0.1:{ports[instance]}/", timeout=2) as answer:
            assert answer.read().decode().strip() == "two from api"
    release = data["release"]
    for before, after in zip(WAVES, WAVES[1:]):  # a wave moves once the one before reports the release healthy
        healthy = max(first_time(topo, f"{ENV}/reports/{i}.json", lambda r: r["running"] == release and r["status"] == "healthy")
                      for i in instances_of(data, before[0]))  # fmt: skip
        moved = first_time(topo, f"{ENV}/roles/{after[0]}/current", lambda p: p["release"] == release)
        assert moved >= healthy, f"{after[0]} moved before {before[0]} reported {release} healthy"
    print(f"\nrollout through four waves, two api instances drained one at a time: {len(prober.samples)} probes")


def test_destroy_removes_every_stack_dependents_first_then_finds_nothing(topo):
    result = topo.run("destroy", ENV, "--confirm", ENV, "--json")
    assert result.exit_code == 0, result.output
    destroyed = json.loads(result.stdout)["destroyed"]
    assert set(destroyed) == STACKS
    position = {stack: n for n, stack in enumerate(destroyed)}
    assert position["edge"] < min(position["api"], position["web"], position["livekit"])
    assert position["data"] < min(position["api"], position["web"], position["agent"])
    assert position["shared"] == len(destroyed) - 1
    assert all(state(topo, stack) is None for stack in STACKS)
    aws = topo.aws
    assert aws.client("elbv2").describe_load_balancers()["LoadBalancers"] == []
    assert aws.client("rds").describe_db_instances()["DBInstances"] == []
    assert aws.client("elasticache").describe_replication_groups()["ReplicationGroups"] == []
    running = [i for r in aws.client("ec2").describe_instances()["Reservations"] for i in r["Instances"]
               if i["State"]["Name"] != "terminated"]  # fmt: skip
    assert running == []
    again = topo.run("destroy", ENV, "--confirm", ENV)
    assert again.exit_code == 0, again.output
    assert f"{ENV}: destroyed nothing." in again.output
    assert all(f"{stack}: nothing to destroy" in again.output for stack in STACKS)
