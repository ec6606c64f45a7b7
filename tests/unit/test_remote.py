"""damso exec through SSM Run Command, against in-process moto: the exact call (document, script,
output bucket and prefix, instances), each host's whole output read back from where the agent
writes it, secret values masked, one line a host and exit 1 if any failed."""

from __future__ import annotations

import json
import subprocess

import pytest
from typer.testing import CliRunner

from damso_ops import redact
from damso_ops.cli import app
from damso_ops.deploy.target import Target
from damso_ops.errors import UsageError
from damso_ops.operate import remote
from tests.support.moto_env import ARTIFACTS, put_state

SENTINEL = "sentinel-exec-secret-5d2a71"
ROLES = """
[environments.prod.roles.api]
services = ["api"]
secrets = ["API_TOKEN"]
"""


class Agent:
    """moto's SSM, plus what the SSM agent on each host would do: write the output to S3 and end
    with the exit code a test asks for. moto records commands and runs none."""

    def __init__(self, ssm, s3, outputs: dict[str, tuple[str, str, int]]) -> None:
        self.ssm, self.s3, self.outputs, self.exceptions = ssm, s3, outputs, ssm.exceptions

    def send_command(self, **kwargs):
        answer = self.ssm.send_command(**kwargs)
        command_id = answer["Command"]["CommandId"]
        for instance, (stdout, stderr, _) in self.outputs.items():
            step = f"{kwargs['OutputS3KeyPrefix']}/{command_id}/{instance}/awsrunShellScript/0.awsrunShellScript"
            self.s3.put_object(Bucket=kwargs["OutputS3BucketName"], Key=f"{step}/stdout", Body=stdout.encode())
            if stderr:
                self.s3.put_object(Bucket=kwargs["OutputS3BucketName"], Key=f"{step}/stderr", Body=stderr.encode())
        return answer

    def get_command_invocation(self, **kwargs):
        found = self.ssm.get_command_invocation(**kwargs)
        code = self.outputs[kwargs["InstanceId"]][2]
        return {**found, "ResponseCode": code, "Status": "Success" if code == 0 else "Failed",
                "StandardOutputContent": "(cut at 24,000 characters)"}  # fmt: skip


def test_the_exact_ssm_call_and_each_hosts_whole_output_read_back(aws):
    ssm, s3 = aws.client("ssm"), aws.client("s3")
    s3.create_bucket(Bucket=ARTIFACTS)
    long_output = "x" * 30000 + "\nend\n"  # beyond what SSM's own answer carries
    agent = Agent(ssm, s3, {"i-a": (long_output, "", 0), "i-b": ("", "boom\n", 3)})
    result = remote.run(agent, s3, ARTIFACTS, "prod", "api", ["i-a", "i-b"], ["sh", "-c", "echo it's $HOME"], interval=0)
    (command,) = ssm.list_commands(CommandId=result.command_id)["Commands"]
    assert command["DocumentName"] == "AWS-RunShellScript" and sorted(command["InstanceIds"]) == ["i-a", "i-b"]  # moto keeps a set
    assert command["Parameters"] == {"commands": ["cd / && exec sh -c 'echo it'\"'\"'s $HOME'\n"], "executionTimeout": ["600"]}
    assert (command["OutputS3BucketName"], command["OutputS3KeyPrefix"]) == (ARTIFACTS, "prod/exec")
    assert command["Comment"] == "damso exec prod api: sh -c 'echo it'\"'\"'s $HOME'"
    a, b = result.hosts
    assert (a.instance_id, a.status, a.exit_code, a.stdout, a.ok) == ("i-a", "Success", 0, long_output, True)
    assert (b.instance_id, b.status, b.exit_code, b.stdout, b.stderr, b.ok) == ("i-b", "Failed", 3, "", "boom\n", False)
    assert a.output_uri == f"s3://{ARTIFACTS}/prod/exec/{result.command_id}/i-a/" and not result.ok


def test_without_output_in_s3_ssms_own_answer_is_shown(aws):
    ssm, s3 = aws.client("ssm"), aws.client("s3")
    s3.create_bucket(Bucket=ARTIFACTS)
    result = remote.run(ssm, s3, ARTIFACTS, "prod", "api", ["i-a"], ["uptime"], service="api", timeout=60, interval=0)
    (command,) = ssm.list_commands(CommandId=result.command_id)["Commands"]
    assert command["Parameters"] == {"commands": [remote.host_script(["uptime"], "api")], "executionTimeout": ["60"]}
    assert command["Comment"] == "damso exec prod api api: uptime"
    assert [(h.status, h.exit_code, h.stdout) for h in result.hosts] == [("Success", 0, "")] and result.ok


def test_the_host_script_runs_the_command_or_enters_the_container():
    assert remote.host_script(["df", "-h", "/"]) == "cd / && exec df -h /\n"
    script = remote.host_script(["sh", "-c", "echo $PATH"], "stt")
    assert script.endswith("""exec $compose -p "$project" -f "$folder/compose.yml" exec -T stt sh -c 'echo $PATH'\n""")
    assert subprocess.run(["sh", "-n"], input=script, text=True).returncode == 0  # valid shell


def test_the_host_script_says_when_no_release_is_applied(tmp_path):
    env = {"DAMSO_WORKDIR": str(tmp_path), "DAMSO_ENV": "prod", "DAMSO_ROLE": "api", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(["sh", "-c", remote.host_script(["true"], "api")], env=env, capture_output=True, text=True)
    assert done.returncode == remote.NOT_APPLIED
    assert done.stderr == "damso exec: this host has applied no release yet, so it runs no container api\n"


def test_targets_the_only_instance_one_or_all():
    assert remote.targets("api", ["i-a"], None, False) == ["i-a"]
    assert remote.targets("api", ["i-a", "i-b"], None, True) == ["i-a", "i-b"]
    assert remote.targets("api", ["i-a", "i-b"], "i-b", False) == ["i-b"]
    for instance, every, message in [(None, False, "api has 2 instances (i-a, i-b); pass --instance ID or --all."),
                                     ("i-z", False, "api has no instance 'i-z' (instances: i-a, i-b)."),
                                     ("i-a", True, "--instance and --all say different things; pass one of them.")]:  # fmt: skip
        with pytest.raises(UsageError) as exc:
            remote.targets("api", ["i-a", "i-b"], instance, every)
        assert exc.value.message == message


@pytest.fixture
def target(aws, make_config) -> Target:
    target = Target(make_config(ROLES), "prod", aws)
    target.ensure_state_bucket()
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=ARTIFACTS)
    put_state(s3, "shared", {"artifact_bucket": ARTIFACTS})
    put_state(s3, "api", {"instance_id": "i-a", "instance_ids": ["i-a", "i-b"], "private_ip": "10.0.1.5"})
    aws.client("ssm").put_parameter(Name="/damso/prod/api/API_TOKEN", Value=SENTINEL, Type="SecureString")
    return target


def damso(target: Target, *args: str):
    return CliRunner().invoke(app, ["--config", str(target.cfg.path), "exec", "prod", *args])


def test_exec_cli_one_line_a_host_and_the_call_in_json(target, monkeypatch):
    redact.forget_all()
    ssm = target.aws.client("ssm")
    result = damso(target, "api", "--all", "--json", "--", "cat", "/etc/hostname")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [(h["instance_id"], h["exit_code"], h["ok"]) for h in data["hosts"]] == [("i-a", 0, True), ("i-b", 0, True)]
    (command,) = ssm.list_commands(CommandId=data["command_id"])["Commands"]
    assert sorted(command["InstanceIds"]) == ["i-a", "i-b"] and command["OutputS3KeyPrefix"] == "prod/exec"
    result = damso(target, "api", "--instance", "i-b", "--", "uptime")
    assert result.exit_code == 0 and result.stdout.splitlines()[-1] == "i-b: exit 0"
    result = damso(target, "api", "--", "uptime")
    assert result.exit_code == 2 and "api has 2 instances (i-a, i-b); pass --instance ID or --all." in result.output
    result = damso(target, "api", "--all")
    assert result.exit_code == 2 and "Give the command to run after --, e.g. damso exec prod api -- uptime." in result.output


def test_exec_cli_masks_secrets_and_fails_when_a_host_fails(target, monkeypatch):
    from damso_ops.operate import remote as lib

    real = lib.run

    def with_agent(ssm, s3, *args, **kwargs):
        return real(Agent(ssm, s3, {"i-a": (f"TOKEN={SENTINEL}\n", "", 0), "i-b": ("", "no such file\n", 2)}), s3, *args, **kwargs)

    monkeypatch.setattr(lib, "run", with_agent)
    result = damso(target, "api", "--all", "--", "env")
    assert result.exit_code == 1
    assert result.stdout.splitlines() == ["== i-a", "TOKEN=********", "== i-b", "no such file", "i-a: exit 0",
                                          "i-b: exit 2 (Failed)"]  # fmt: skip
    assert SENTINEL not in result.output
    redact.forget_all()
