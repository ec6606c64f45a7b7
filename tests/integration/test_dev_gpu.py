"""damso dev gpu against the embedded emulator: a real terraform apply of the shared and
gpu-dev stacks, real EC2 start/stop (moto) through the CLI."""

from __future__ import annotations

import json

import pytest

from damso_ops.aws import AwsEndpoint
from tests.integration.conftest import Project

pytestmark = pytest.mark.integration

AMI = "ami-1e749f67"  # one of moto's built-in images
CONFIG = f"""
[project]
name = "gpudemo"

[registry]
host = "127.0.0.1:5000"
namespace = "team"

[repositories]
[services]

[environments.sandbox]
sandbox = true
region = "ap-northeast-2"
ssh_cidrs = ["203.0.113.7/32"]

[environments.sandbox.gpu_dev.alice]
ami = "{AMI}"
warn_after_hours = 0

[environments.sandbox.gpu_dev.bob]
ami = "{AMI}"
instance_type = "g4dn.xlarge"
volume_size = 100

[environments.fresh]
sandbox = true
region = "ap-northeast-2"

[environments.fresh.gpu_dev.alice]
ami = "{AMI}"
"""


@pytest.fixture(scope="module")
def gpu_project(tmp_path_factory):
    """A project whose sandbox env has no roles, only GPU dev boxes; the shared stack deployed once."""
    base = tmp_path_factory.mktemp("devgpu")
    root = base / "project"
    root.mkdir()
    (root / "damso.toml").write_text(CONFIG)
    env = {"DAMSO_CACHE_DIR": str(base / "cache"), "DAMSO_CONFIG": None, "DAMSO_STATE_DIR": None, "CI": "true"}
    project = Project(root, env, {}, None)
    try:
        deployed = project.damso("deploy", "sandbox", "--yes", "--json")
        assert deployed.exit_code == 0, deployed.output
        data = json.loads(deployed.stdout)
        assert data["stacks"]["shared"]["applied"] and "gpu-dev" not in data["stacks"]
        yield project
    finally:
        project.damso("sandbox", "stop")


def ec2_of(project):
    server = json.loads((project.root / ".damso" / "sandbox" / "server.json").read_text())
    return AwsEndpoint("ap-northeast-2", f"http://127.0.0.1:{server['port']}").client("ec2")


def gpu(project, *args: str):
    return project.damso("dev", "gpu", *args, "--env", "sandbox")


def gpu_json(project, *args: str):
    result = gpu(project, *args, "--json")
    return result, json.loads(result.stdout) if result.stdout.strip().startswith("{") else None


def box_instances(project) -> dict[str, dict]:
    reservations = ec2_of(project).describe_instances(Filters=[{"Name": "tag:Role", "Values": ["gpu-dev"]}])["Reservations"]
    found = {}
    for r in reservations:
        for i in r["Instances"]:
            tags = {t["Key"]: t["Value"] for t in i["Tags"]}
            if tags.get("Env") == "sandbox" and i["State"]["Name"] != "terminated":
                found[tags["GpuDev"]] = i
    return found


@pytest.fixture(scope="module")
def started(gpu_project):
    """Before: nothing created. Then `start alice` applies the gpu-dev stack and starts alice."""
    before, data = gpu_json(gpu_project, "status")
    assert before.exit_code == 0, before.output
    assert [(b["name"], b["state"]) for b in data["boxes"]] == [("alice", "not created"), ("bob", "not created")]
    result, data = gpu_json(gpu_project, "start", "alice")
    assert result.exit_code == 0, result.output
    return data


def test_unknown_box_env_and_undeployed_env_are_one_sentence_and_change_nothing(gpu_project):
    result = gpu(gpu_project, "start", "carol")
    assert result.exit_code == 2
    assert "Unknown GPU dev box 'carol' in sandbox (boxes: alice, bob)." in result.output
    assert "Traceback" not in result.output

    result = gpu_project.damso("dev", "gpu", "status", "--env", "nowhere")
    assert result.exit_code == 2 and "Unknown environment 'nowhere'" in result.output

    result = gpu_project.damso("dev", "gpu", "start", "alice", "--env", "fresh")
    assert result.exit_code == 1
    assert "fresh has no shared stack yet" in result.output and "damso deploy fresh" in result.output
    assert "Traceback" not in result.output
    assert not [name for name in box_instances(gpu_project) if name == "carol"]


def test_not_created_box_cannot_be_stopped_or_reached(gpu_project):
    if box_instances(gpu_project):
        pytest.skip("the boxes were already created by an earlier test")
    for args in (("stop", "alice"), ("ssh", "alice"), ("status", "alice")):
        result = gpu(gpu_project, *args)
        assert result.exit_code == 1, result.output
        assert "GPU dev box 'alice' in sandbox is not created yet" in result.output


def test_start_applies_the_stack_creates_boxes_stopped_and_starts_only_the_one(gpu_project, started):
    assert started["was"] == "not created" and started["stack"]["applied"] is True
    assert ["create", 'aws_ec2_instance_state.box["bob"]'] in started["stack"]["changes"]
    assert started["state"] == "running" and started["instance_type"] == "g5.xlarge"
    assert started["login"] == f"ubuntu@{started['public_ip']}" and started["public_ip"]
    assert "sandbox" in started["ssh"] and "not waited" in started["ssh"]
    found = box_instances(gpu_project)
    assert found["alice"]["State"]["Name"] == "running"
    assert found["bob"]["State"]["Name"] == "stopped"  # created, then left stopped
    assert found["bob"]["InstanceType"] == "g4dn.xlarge" and found["bob"]["ImageId"] == AMI


def test_status_shows_state_type_ips_uptime_cost_and_warns(gpu_project, started):
    result, data = gpu_json(gpu_project, "status")
    assert result.exit_code == 0, result.output
    boxes = {b["name"]: b for b in data["boxes"]}
    alice, bob = boxes["alice"], boxes["bob"]
    assert alice["state"] == "running" and alice["hourly_usd"] == 1.244 and alice["uptime_seconds"] >= 0
    assert alice["public_ip"] == started["public_ip"] and alice["private_ip"].startswith("10.0.1.")
    assert bob["state"] == "stopped" and bob["hourly_usd"] == 0.647 and bob["uptime_seconds"] is None
    assert bob["warning"] is None
    assert len(data["warnings"]) == 1 and data["warnings"][0].startswith("alice has been running for")
    assert "damso dev gpu stop alice --env sandbox" in data["warnings"][0]

    text = gpu(gpu_project, "status")
    assert text.exit_code == 0, text.output
    assert "alice: running, g5.xlarge ($1.244/h)" in text.stdout
    assert f"public {started['public_ip']}" in text.stdout
    assert "bob: stopped, g4dn.xlarge ($0.647/h)" in text.stdout
    assert "Warning: alice has been running for" in text.output


def test_second_start_applies_nothing_and_keeps_it_running(gpu_project, started):
    result = gpu(gpu_project, "start", "alice")
    assert result.exit_code == 0, result.output
    assert "gpu-dev: no changes" in result.output and "already running" in result.output
    assert "not waited: sandbox instances are emulated" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == f"ubuntu@{started['public_ip']}"


def test_ssh_prints_the_command_and_refuses_what_cannot_work(gpu_project, started):
    result = gpu(gpu_project, "ssh", "alice")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"ssh ubuntu@{started['public_ip']}"
    forwarded = gpu_project.damso("dev", "gpu", "ssh", "alice", "--env", "sandbox", "--", "-L", "8888:localhost:8888")
    assert forwarded.stdout.strip() == f"ssh -L 8888:localhost:8888 ubuntu@{started['public_ip']}", forwarded.output
    stopped = gpu(gpu_project, "ssh", "bob")
    assert stopped.exit_code == 1 and "GPU dev box 'bob' in sandbox is stopped" in stopped.output
    executed = gpu(gpu_project, "ssh", "alice", "--exec")
    assert executed.exit_code == 2 and "emulated instances run no SSH server" in executed.output


def test_stop_waits_until_stopped(gpu_project, started):
    result, data = gpu_json(gpu_project, "stop", "alice")
    assert result.exit_code == 0, result.output
    assert data["was"] == "running" and data["state"] == "stopped" and data["warning"] is None
    assert box_instances(gpu_project)["alice"]["State"]["Name"] == "stopped"
    again = gpu(gpu_project, "stop", "alice")
    assert again.exit_code == 0 and "already stopped" in again.output
    status, data = gpu_json(gpu_project, "status", "alice")
    assert status.exit_code == 0, status.output
    assert [b["state"] for b in data["boxes"]] == ["stopped"] and data["warnings"] == []
