"""The team's GPU dev boxes: `damso dev gpu start|stop|status|ssh NAME`.

Boxes are defined under environments.<env>.gpu_dev in damso.toml and created by
the gpu-dev stack, stopped (start_stopped), so that a box costs nothing until
someone starts it. Starting and stopping go through the EC2 API; Terraform
ignores the state it finds afterwards. Library code: never prints; progress goes
through on_event, clients come in through the deploy Target.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from damso_ops.config import Environment, GpuDevBox
from damso_ops.deploy import planning
from damso_ops.deploy.target import Target
from damso_ops.errors import ConfigError, DamsoError, UsageError
from damso_ops.hosts.devbox_status import NOT_CREATED, BoxStatus
from damso_ops.hosts.instances import Instance, describe, set_running
from damso_ops.timing import wait_for

STACK = "gpu-dev"
SSH_PORT = 22
LIVE_STATES = ("pending", "running", "stopping", "stopped")

Event = Callable[[str, str], None]  # (phase, message)
Confirm = Callable[[list[tuple[str, str]]], bool]  # destructive (action, address) changes → go ahead?


# ---- config -----------------------------------------------------------------------


def require_box(env_name: str, env: Environment, name: str) -> GpuDevBox:
    if not env.gpu_dev:
        raise UsageError(f"Environment '{env_name}' has no GPU dev boxes; add [environments.{env_name}.gpu_dev.NAME] to damso.toml.")
    if name not in env.gpu_dev:
        raise UsageError(f"Unknown GPU dev box '{name}' in {env_name} (boxes: {', '.join(sorted(env.gpu_dev))}).")
    return env.gpu_dev[name]


def selected(env_name: str, env: Environment, name: str | None) -> list[str]:
    """The boxes a status shows: the named one, or every configured one."""
    if name is not None:
        require_box(env_name, env, name)
        return [name]
    if not env.gpu_dev:
        require_box(env_name, env, "")  # raises: no boxes at all
    return sorted(env.gpu_dev)


def check_sandbox_amis(env_name: str, env: Environment) -> None:
    """AMI lookups find nothing in the emulator: every box of a sandbox names its AMI."""
    if env.sandbox:
        for name, box in sorted(env.gpu_dev.items()):
            if not box.ami:
                raise ConfigError(f"environments.{env_name}.gpu_dev.{name}.ami is required for a sandbox environment.")


# ---- what EC2 says ----------------------------------------------------------------


def find_all(ec2, project: str, env_name: str) -> dict[str, Instance]:
    """Every GPU dev box of the environment that exists (by the tags the gpu-dev stack sets)."""
    filters = [
        {"Name": "tag:Project", "Values": [project]},
        {"Name": "tag:Env", "Values": [env_name]},
        {"Name": "tag:Role", "Values": [STACK]},
        {"Name": "instance-state-name", "Values": list(LIVE_STATES)},
    ]
    found: dict[str, dict] = {}
    for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
        for r in page["Reservations"]:
            for i in r["Instances"]:
                name = {t["Key"]: t["Value"] for t in i.get("Tags", [])}.get("GpuDev")
                if name and (name not in found or i["LaunchTime"] > found[name]["LaunchTime"]):
                    found[name] = i
    return {name: Instance.from_api(i) for name, i in found.items()}


def _status_of(target: Target, name: str, instance: Instance | None) -> BoxStatus:
    box = target.env.gpu_dev.get(name)
    return BoxStatus(name, target.env_name, box.user if box else "ubuntu", box is not None, instance,
                     box.warn_after_hours if box else None)  # fmt: skip


def status(target: Target, name: str | None = None) -> list[BoxStatus]:
    """The named box, or every configured box plus any left in AWS that config no longer has."""
    names = selected(target.env_name, target.env, name)
    found = find_all(target.aws.client("ec2"), target.cfg.project.name, target.env_name)
    if name is not None and name not in found:
        raise not_created(target.env_name, name)
    extra = [] if name is not None else sorted(set(found) - set(names))
    return [_status_of(target, n, found.get(n)) for n in [*names, *extra]]


def not_created(env_name: str, name: str) -> DamsoError:
    return DamsoError(f"GPU dev box '{name}' in {env_name} is not created yet; "
                      f"'damso dev gpu start {name} --env {env_name}' creates and starts it.")  # fmt: skip


# ---- the gpu-dev stack ------------------------------------------------------------


@dataclass
class StackResult:
    changes: tuple[tuple[str, str], ...] = ()
    applied: bool = False
    instance_ids: dict[str, str] = field(default_factory=dict)


def ensure_stack(target: Target, on_event: Event, confirm: Confirm, *, lock_timeout: float = 0) -> StackResult:
    """Plan the gpu-dev stack under the environment's lock (waiting up to lock_timeout for a deploy
    that holds it); apply it when the plan is not empty (deletes and replacements need confirm)."""
    check_sandbox_amis(target.env_name, target.env)
    never = DamsoError(f"{target.env_name} has no shared stack yet (the GPU dev boxes live in its network).",
                       hint=f"Run 'damso deploy {target.env_name}' first.")  # fmt: skip
    if not target.bucket_exists(target.state_bucket):
        raise never
    result = StackResult()

    def go_ahead(plans) -> bool:
        (plan,) = plans
        result.changes = plan.changes
        destructive = [c for c in plan.changes if c[0] in ("delete", "replace")]
        if destructive and not confirm(destructive):
            raise DamsoError(
                f"Nothing applied: the gpu-dev stack would {', '.join(f'{a} {r}' for a, r in destructive)}.",
                hint="Pass --yes to apply it anyway.",
            )
        return True

    with planning.locked(target, "dev gpu start", timeout=lock_timeout, on_event=on_event, create=False) as held:
        planner = planning.Planner(target, ["shared", STACK], on_event, held=held)
        if not (planner.states(["shared"])["shared"][0] or {}).get("public_subnet_ids"):
            raise never
        plan, result.applied, outputs = planner.ensure(STACK, go_ahead)
    result.changes = plan.changes
    result.instance_ids = dict(outputs.get("instance_ids") or {})
    return result


# ---- start / stop -----------------------------------------------------------------


def wait_ssh(host: str, timeout: float, port: int = SSH_PORT, poll: float = 5.0) -> bool:
    """True once a TCP connection to host:port succeeds, False when timeout passes first."""
    def answers() -> bool | None:
        try:
            with socket.create_connection((host, port), timeout=min(5.0, max(0.1, timeout))):
                return True
        except OSError:
            return None

    try:
        return wait_for(answers, timeout=timeout, interval=poll, what=f"SSH on {host}:{port}")
    except TimeoutError:
        return False


@dataclass
class StartResult:
    box: BoxStatus
    stack: StackResult
    was: str  # the state before: not created, stopped, running...
    ssh: str  # "answered", "not waited: <why>"

    def to_dict(self) -> dict:
        return {
            **self.box.to_dict(),
            "was": self.was,
            "ssh": self.ssh,
            "stack": {"changes": [list(c) for c in self.stack.changes], "applied": self.stack.applied},
        }


def start(target: Target, name: str, on_event: Event, confirm: Confirm, *, ssh_wait: bool = True,
          ssh_timeout: float = 300, delay: int = 5, lock_timeout: float = 0) -> StartResult:  # fmt: skip
    """Apply the gpu-dev stack when needed (under the environment's lock, waiting up to
    lock_timeout for it), start the box, wait until it runs and SSH answers."""
    box = require_box(target.env_name, target.env, name)
    ec2 = target.aws.client("ec2")
    before = find_all(ec2, target.cfg.project.name, target.env_name).get(name)
    stack = ensure_stack(target, on_event, confirm, lock_timeout=lock_timeout)
    instance_id = stack.instance_ids.get(name)
    if not instance_id:
        raise DamsoError(f"The gpu-dev stack has no instance for '{name}' after apply.")
    instance = describe(ec2, instance_id)
    if instance.state == "running":
        on_event("start", f"{name} ({instance.id}) is already running")
    instance = set_running(ec2, instance, True, on_event, delay)
    ssh = _ssh_wait(target, name, box, instance, ssh_wait, ssh_timeout, on_event)
    return StartResult(_status_of(target, name, instance), stack, before.state if before else NOT_CREATED, ssh)


def _ssh_wait(target: Target, name: str, box: GpuDevBox, instance: Instance, wanted: bool, timeout: float,
              on_event: Event) -> str:  # fmt: skip
    if not wanted:
        return "not waited: --no-ssh-wait"
    if target.aws.emulated:
        return "not waited: sandbox instances are emulated and run no SSH server"
    if not target.env.box_ssh_cidrs(name):
        return "not waited: SSH is closed (no ssh_cidrs for this box or its environment)"
    if not instance.public_ip:
        raise DamsoError(f"{name} ({instance.id}) is running but has no public IP to reach SSH on.")
    on_event("ssh", f"waiting for {instance.public_ip}:{SSH_PORT} (up to {timeout:g} s)")
    if not wait_ssh(instance.public_ip, timeout):
        raise DamsoError(
            f"{name} is running but SSH on {instance.public_ip}:{SSH_PORT} did not answer within {timeout:g} s.",
            hint="Check that your address is in ssh_cidrs, or wait and run 'damso dev gpu status'.",
        )
    return "answered"


def stop(target: Target, name: str, on_event: Event, delay: int = 5) -> tuple[BoxStatus, str]:
    """Stop the box and wait until it has stopped; returns its status and the state it was in."""
    require_box(target.env_name, target.env, name)
    ec2 = target.aws.client("ec2")
    instance = find_all(ec2, target.cfg.project.name, target.env_name).get(name)
    if instance is None:
        raise not_created(target.env_name, name)
    if instance.state == "stopped":
        on_event("stop", f"{name} ({instance.id}) is already stopped")
    was = instance.state
    instance = set_running(ec2, instance, False, on_event, delay)
    return _status_of(target, name, instance), was


# ---- ssh --------------------------------------------------------------------------


def ssh_argv(target: Target, name: str, extra: list[str] | None = None) -> list[str]:
    """The ssh command line for a running box."""
    (st,) = status(target, name)
    if st.state != "running":
        raise DamsoError(f"GPU dev box '{name}' in {target.env_name} is {st.state}; "
                         f"start it with 'damso dev gpu start {name} --env {target.env_name}'.")  # fmt: skip
    if not st.login:
        raise DamsoError(f"GPU dev box '{name}' in {target.env_name} is running but has no public IP.")
    return ["ssh", *(extra or []), st.login]
