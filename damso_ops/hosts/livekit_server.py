"""The team's central LiveKit server, operated: where it is, its state and URLs, join
tokens, and webhook changes rolled out through the normal deploy (with compensation).

Its keys and webhook list as a deploy renders them are in deploy/livekit_keys.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone

from damso_ops.config import Environment
from damso_ops.deploy import livekit_keys as config
from damso_ops.deploy.livekit_keys import ROLE
from damso_ops.deploy.target import Target
from damso_ops.errors import DamsoError, UsageError
from damso_ops.hosts import prices
from damso_ops.hosts.instances import Instance


def require_role(env_name: str, env: Environment) -> None:
    if ROLE not in env.roles:
        raise UsageError(
            f"{env_name} has no LiveKit server: environments.{env_name}.roles.{ROLE} is not defined.",
            hint=f"Add [environments.{env_name}.roles.{ROLE}] (ami, instance_type) to damso.toml.",
        )


def mint_token(key: str, secret: str, room: str, identity: str, ttl: int, name: str | None = None,
               now: datetime | None = None) -> str:  # fmt: skip
    """A LiveKit access token (JWT, HS256) that lets `identity` join `room`."""
    import jwt

    if not room or not identity:
        raise UsageError("A token needs a room and an identity (--room R --identity I).")
    if ttl <= 0:
        raise UsageError(f"--ttl must be a positive number of seconds, got {ttl}.")
    issued = int((now or datetime.now(timezone.utc)).timestamp())
    claims = {
        "iss": key,
        "sub": identity,
        "nbf": issued,
        "exp": issued + ttl,
        "video": {"room": room, "roomJoin": True},
    }
    if name:
        claims["name"] = name
    return jwt.encode(claims, secret, algorithm="HS256")


# ---- the instance ------------------------------------------------------------------------


def find_instance(ec2, project: str, env: str) -> Instance | None:
    """The environment's LiveKit instance (by the tags the host module sets), if it exists."""
    filters = [
        {"Name": "tag:Project", "Values": [project]},
        {"Name": "tag:Env", "Values": [env]},
        {"Name": "tag:Role", "Values": [ROLE]},
        {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
    ]
    found = [i for r in ec2.describe_instances(Filters=filters)["Reservations"] for i in r["Instances"]]
    if not found:
        return None
    i = max(found, key=lambda x: x["LaunchTime"])
    # The Elastic IP is the address (a stopped instance keeps it; describe_instances may not show it then).
    addresses = ec2.describe_addresses(Filters=[{"Name": "instance-id", "Values": [i["InstanceId"]]}])["Addresses"]
    public = addresses[0]["PublicIp"] if addresses else i.get("PublicIpAddress")
    return replace(Instance.from_api(i), public_ip=public)


def urls(env_cfg: Environment, instance: Instance | None, env_name: str = "") -> list[str]:
    """Where clients connect: with TLS only wss://<subdomain>.<domain> (the plain signal port is
    closed to the world and join tokens must not travel unencrypted); behind the edge stack's NLB
    only wss://<env>-livekit.<domain> (the signal port is open to the VPC alone); else
    ws://host-or-ip:port."""
    lk, host = env_cfg.livekit, config.host(env_cfg)
    if lk.tls:
        return [f"wss://{host}"] if host else []
    if "edge" in env_cfg.stacks and env_name and env_cfg.domain:
        return [f"wss://{env_name}-livekit.{env_cfg.domain}"]
    found = []
    if host and env_cfg.zone_id:
        found.append(f"ws://{host}:{lk.port}")
    if instance and instance.public_ip:
        found.append(f"ws://{instance.public_ip}:{lk.port}")
    return found


def primary_url(env_cfg: Environment, instance: Instance | None, env_name: str = "") -> str:
    found = urls(env_cfg, instance, env_name)
    if not found:
        raise DamsoError("The LiveKit server has no address yet.", hint="Run 'damso livekit up' first.")
    return found[0]


def status(target: Target) -> tuple[dict, Instance | None]:
    """The server's state, addresses, URLs, images, uptime, price, webhooks and last report."""
    env, lk = target.env, target.env.livekit
    instance = find_instance(target.aws.client("ec2"), target.cfg.project.name, target.env_name)
    report, hooks = None, list(lk.webhook_urls)
    if instance:
        store = target.store()
        report = store.reports().get(instance.id)
        hooks = config.webhook_urls(env, store.added_webhooks())
    itype = instance.instance_type if instance else env.roles[ROLE].instance_type_for(ROLE)
    data = {
        "env": target.env_name,
        "exists": instance is not None,
        "instance_id": instance.id if instance else None,
        "state": instance.state if instance else "absent",
        "instance_type": itype,
        "public_ip": instance.public_ip if instance else None,
        "private_ip": instance.private_ip if instance else None,
        "urls": urls(env, instance, target.env_name),
        "images": {"livekit": lk.image, **({"caddy": lk.caddy_image} if lk.tls else {})},
        "uptime_seconds": instance.uptime_seconds() if instance else None,
        "hourly_usd": prices.hourly(itype),
        "webhook_urls": hooks,
        "report": {k: report.get(k) for k in ("release", "running", "status", "time", "error") if k in report} if report else None,
    }
    return data, instance


def webhooks(target: Target) -> list[str]:
    """The configured and added webhook receivers (the added ones only once the server is up)."""
    added = target.store().added_webhooks() if target.bucket_exists(target.artifact_bucket) else []
    return config.webhook_urls(target.env, added)


def change_webhooks(target: Target, add: str | None, remove: str | None, roll_out: Callable[[], object]):
    """Change the shared webhook list and roll the server's release out with it.

    Returns (the full list, whether it changed, roll_out's result or None). If the
    roll-out fails, the list is put back as it was and the error says so."""
    if not target.bucket_exists(target.artifact_bucket):
        raise DamsoError(f"{target.env_name}'s LiveKit server is not up yet.",
                         hint=f"Run 'damso livekit up --env {target.env_name}' first.")  # fmt: skip
    store = target.store()
    previous = store.added_webhooks()
    hooks, changed = config.change_webhooks(store, target.env, add=add, remove=remove)
    if not changed:
        return hooks, False, None
    try:
        result = roll_out()
    except DamsoError as exc:
        store.set_added_webhooks(previous)
        raise DamsoError(
            f"The webhook list was not changed: {exc.message}",
            hint=f"If infrastructure changes are pending, run 'damso livekit up --env {target.env_name}' first.",
            details=exc.details,
        ) from None
    return hooks, True, result
