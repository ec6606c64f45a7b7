"""damso exec: a command on a role's hosts through SSM Run Command, without SSH.

  document   AWS-RunShellScript; its `commands` are host_script(): the command itself, or
             `docker compose exec` into one of the role's containers (--service)
  targets    instance ids from the role stack's state: --instance ID, --all, or the only one
  output     the SSM agent writes each host's whole stdout and stderr to the artifact bucket
             under <env>/exec/<command id>/<instance id>/ (SSM's own answer stops at 24,000
             characters); the host role may write there and nowhere else in the bucket
  result     each host's status and exit code; read back from S3, the role's secret values masked

The SSM agent runs the script as root. Only a real account shows the agent's side (registration,
the instance profile, delivery): the emulator records commands and runs none.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

from damso_ops import redact
from damso_ops.errors import DamsoError, UsageError
from damso_ops.timing import wait_for

DOCUMENT = "AWS-RunShellScript"
DONE = ("Success", "Failed", "Cancelled", "TimedOut", "Undeliverable", "Terminated", "DeliveryTimedOut",
        "ExecutionTimedOut", "InvalidPlatform", "AccessDenied")  # fmt: skip
NOT_APPLIED = 125  # the script's exit code when the host has no applied release (--service)


def output_prefix(env: str) -> str:
    return f"{env}/exec"


def host_script(argv: list[str], service: str | None = None) -> str:
    """The shell script the SSM agent runs on the host: the command, or (service) the command in
    that container of the applied release, through whichever compose the host has."""
    command = shlex.join(argv)
    if not service:
        return f"cd / && exec {command}\n"
    return f"""\
set -eu
if [ -r /etc/damso/host.env ]; then set -a; . /etc/damso/host.env; set +a; fi
workdir="${{DAMSO_WORKDIR:-/var/lib/damso}}"
project="${{DAMSO_COMPOSE_PROJECT:-damso-${{DAMSO_ENV}}-${{DAMSO_ROLE}}}}"
if [ ! -s "$workdir/applied" ]; then
  echo "damso exec: this host has applied no release yet, so it runs no container {service}" >&2
  exit {NOT_APPLIED}
fi
folder="$workdir/releases/$(cat "$workdir/applied")"
if docker compose version >/dev/null 2>&1; then compose="docker compose"; else compose="docker-compose"; fi
cd "$folder"
exec $compose -p "$project" -f "$folder/compose.yml" exec -T {shlex.quote(service)} {command}
"""


@dataclass(frozen=True)
class HostResult:
    instance_id: str
    status: str  # SSM's: Success, Failed, TimedOut, ...
    exit_code: int | None  # None: the command never ran (undeliverable, cancelled)
    stdout: str
    stderr: str
    output_uri: str

    @property
    def ok(self) -> bool:
        return self.status == "Success" and self.exit_code == 0


@dataclass(frozen=True)
class ExecResult:
    env: str
    role: str
    command: str
    service: str | None
    command_id: str
    hosts: list[HostResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(h.ok for h in self.hosts)

    def to_dict(self) -> dict:
        return {"env": self.env, "role": self.role, "command": self.command, "service": self.service,
                "command_id": self.command_id, "ok": self.ok,
                "hosts": [{**h.__dict__, "ok": h.ok} for h in self.hosts]}  # fmt: skip


def targets(role: str, ids: list[str], instance: str | None, every: bool) -> list[str]:
    """The instances to run on: --instance, --all, or the role's only one."""
    if instance and every:
        raise UsageError("--instance and --all say different things; pass one of them.")
    if not ids:
        raise UsageError(f"{role} has no deployed instance to run on.")
    if instance:
        if instance not in ids:
            raise UsageError(f"{role} has no instance {instance!r} (instances: {', '.join(ids)}).")
        return [instance]
    if every or len(ids) == 1:
        return list(ids)
    raise UsageError(f"{role} has {len(ids)} instances ({', '.join(ids)}); pass --instance ID or --all.")


def send(ssm, bucket: str, env: str, role: str, instances: list[str], argv: list[str], service: str | None,
         timeout: int) -> str:  # fmt: skip
    """Send the command; its id."""
    comment = f"damso exec {env} {role}{' ' + service if service else ''}: {shlex.join(argv)}"
    answer = ssm.send_command(
        DocumentName=DOCUMENT,
        InstanceIds=instances,
        Parameters={"commands": [host_script(argv, service)], "executionTimeout": [str(timeout)]},
        OutputS3BucketName=bucket,
        OutputS3KeyPrefix=output_prefix(env),
        Comment=comment[:100],  # SSM's limit
        TimeoutSeconds=max(30, min(timeout, 2592000)),  # to deliver: the agent may be reconnecting
    )
    return answer["Command"]["CommandId"]


def wait(ssm, command_id: str, instance: str, timeout: float, interval: float = 1.0,
         sleep: Callable[[float], None] | None = None) -> dict:  # fmt: skip
    """The host's invocation once it has ended."""

    def probe():
        try:
            found = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance)
        except ssm.exceptions.InvocationDoesNotExist:
            return None  # not yet visible
        return found if found["Status"] in DONE else None

    extra = {"sleep": sleep} if sleep else {}
    try:
        return wait_for(probe, timeout=timeout, interval=interval, what=f"the command on {instance}", **extra)
    except TimeoutError:
        raise DamsoError(f"The command on {instance} did not end within {timeout:g} s (SSM command {command_id}).",
                         hint=f"aws ssm get-command-invocation --command-id {command_id} --instance-id {instance}") from None  # fmt: skip


def read_output(s3, bucket: str, env: str, command_id: str, instance: str, invocation: dict) -> tuple[str, str, str]:
    """(stdout, stderr, where) of one host: the agent's whole output in S3, else SSM's (cut) answer."""
    prefix = f"{output_prefix(env)}/{command_id}/{instance}/"
    parts: dict[str, list[str]] = {"stdout": [], "stderr": []}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in sorted(page.get("Contents", []), key=lambda o: o["Key"]):
            kind = obj["Key"].rsplit("/", 1)[-1]
            if kind in parts:
                body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
                parts[kind].append(body.decode("utf-8", errors="replace"))
    if not parts["stdout"] and not parts["stderr"]:
        parts = {"stdout": [invocation.get("StandardOutputContent", "")], "stderr": [invocation.get("StandardErrorContent", "")]}
    return redact.redact("".join(parts["stdout"])), redact.redact("".join(parts["stderr"])), f"s3://{bucket}/{prefix}"


def run(ssm, s3, bucket: str, env: str, role: str, instances: list[str], argv: list[str], service: str | None = None,
        timeout: int = 600, on_event=lambda phase, message: None, interval: float = 1.0) -> ExecResult:  # fmt: skip
    """Run argv on the instances and wait for each; every host's output read back."""
    if not argv:
        raise UsageError("Give the command to run after --, e.g. damso exec prod api -- uptime.")
    command_id = send(ssm, bucket, env, role, instances, argv, service, timeout)
    on_event("exec", f"SSM command {command_id} sent to {', '.join(instances)}")
    hosts = []
    for instance in instances:
        invocation = wait(ssm, command_id, instance, timeout + 60, interval)
        stdout, stderr, where = read_output(s3, bucket, env, command_id, instance, invocation)
        code = invocation.get("ResponseCode")
        hosts.append(HostResult(instance, invocation["Status"], None if code is None or code < 0 else code, stdout, stderr, where))
    return ExecResult(env, role, shlex.join(argv), service, command_id, hosts)
