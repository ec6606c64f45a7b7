"""The team's central LiveKit server: keys, webhook list, join tokens, instance state.

The server itself is the `livekit` role of an environment and goes through the
normal pipeline (stack, release, reconcile); this module holds what is special
about it. Its keys live only in SSM under /damso/<env>/livekit/; the host fills
them into livekit.yaml at reconcile time.
"""

from __future__ import annotations

import json
import re
import secrets as random
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from damso_ops import redact, secrets
from damso_ops.config import Environment
from damso_ops.errors import DamsoError, UsageError
from damso_ops.instances import Instance

ROLE = "livekit"
KEY_NAME = "LIVEKIT_API_KEY"
SECRET_NAME = "LIVEKIT_API_SECRET"
KEY_NAMES = (KEY_NAME, SECRET_NAME)
KEY_FORMAT = re.compile(r"^[A-Za-z0-9]{3,64}$")
SECRET_FORMAT = re.compile(r"^[A-Za-z0-9+/=._-]{32,128}$")
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
HTTPS_URL = re.compile(r"^https://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~%/-]*)?$")


def require_role(env_name: str, env: Environment) -> None:
    if ROLE not in env.roles:
        raise UsageError(
            f"{env_name} has no LiveKit server: environments.{env_name}.roles.{ROLE} is not defined.",
            hint=f"Add [environments.{env_name}.roles.{ROLE}] (ami, instance_type) to damso.toml.",
        )


# ---- keys ---------------------------------------------------------------------------


def generate_keys() -> tuple[str, str]:
    """A key and secret in LiveKit's own format (what `livekit-server generate-keys` makes)."""
    key = "API" + "".join(random.choice(BASE62) for _ in range(12))
    return key, "".join(random.choice(BASE62) for _ in range(43))


def check_keys(key: str, secret: str) -> None:
    if not KEY_FORMAT.match(key):
        raise UsageError(
            f"{KEY_NAME} {key!r} is not a LiveKit API key: use 3 to 64 letters and digits (like APIx3Kd9TqLm2Pzb)."
        )
    if not SECRET_FORMAT.match(secret):
        raise UsageError(
            f"{SECRET_NAME} is not a LiveKit API secret: it must be 32 to 128 characters of letters, digits "
            "and + / = . _ - (LiveKit refuses shorter secrets).",
            hint="Leave both unset and damso generates a pair.",
        )


def read_keys(ssm, env: str) -> tuple[str, str] | None:
    names = [secrets.parameter(env, ROLE, n) for n in (KEY_NAME, SECRET_NAME)]
    found = {p["Name"]: p["Value"] for p in ssm.get_parameters(Names=names, WithDecryption=True)["Parameters"]}
    if len(found) < 2:
        return None
    key, secret = found[names[0]], found[names[1]]
    redact.register(secret)
    return key, secret


def ensure_keys(ssm, env: str, state_dir: Path, environ: Mapping[str, str], dry_run: bool = False) -> str | None:
    """Keys in SSM: kept when there, else taken from LIVEKIT_API_KEY/SECRET (env or the local
    secrets file) after a format check, else generated. Returns what was done, or None."""
    if read_keys(ssm, env):
        return None
    local = secrets.read_local(secrets.local_file(state_dir, env))
    given = [environ.get(n) or local.get(f"{ROLE}.{n}") or local.get(n) for n in (KEY_NAME, SECRET_NAME)]
    if any(given) and not all(given):
        missing = KEY_NAME if not given[0] else SECRET_NAME
        raise UsageError(f"Only one of {KEY_NAME} and {SECRET_NAME} is set; set {missing} too, or neither to generate a pair.")
    key, secret = given if all(given) else generate_keys()
    check_keys(key, secret)
    redact.register(secret)
    if not dry_run:
        secrets.put(ssm, env, ROLE, KEY_NAME, key)
        secrets.put(ssm, env, ROLE, SECRET_NAME, secret)
    return "the given" if all(given) else "a generated"


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


# ---- webhooks -------------------------------------------------------------------------
# The configured URLs (environments.<env>.livekit.webhook_urls) plus those developers
# add with `damso livekit webhooks add`, kept in the env's artifact bucket so that the
# whole team shares one list.


def webhooks_key(env: str) -> str:
    return f"{env}/livekit/webhooks.json"


def added_webhooks(s3, bucket: str, env: str) -> list[str]:
    try:
        body = s3.get_object(Bucket=bucket, Key=webhooks_key(env))["Body"].read()
    except s3.exceptions.NoSuchKey:
        return []
    return list(json.loads(body).get("urls", []))


def webhook_urls(env_cfg: Environment, added: list[str]) -> list[str]:
    return list(dict.fromkeys([*env_cfg.livekit.webhook_urls, *added]))


def check_url(url: str) -> None:
    if not HTTPS_URL.match(url):
        raise UsageError(f"{url!r} is not an https:// URL; LiveKit webhook receivers must be reached over TLS "
                         "(like https://3.sodam.store/webhook/livekit).")  # fmt: skip


def change_webhooks(s3, bucket: str, env_name: str, env_cfg: Environment, add: str | None = None,
                    remove: str | None = None) -> tuple[list[str], bool]:  # fmt: skip
    """Add or remove one URL in the shared list; returns (the full list, whether it changed)."""
    added = added_webhooks(s3, bucket, env_name)
    if add:
        check_url(add)
        if add in webhook_urls(env_cfg, added):
            return webhook_urls(env_cfg, added), False
        added.append(add)
    if remove:
        if remove in env_cfg.livekit.webhook_urls:
            raise UsageError(
                f"{remove} is set in damso.toml (environments.{env_name}.livekit.webhook_urls); remove it there "
                f"and run 'damso livekit up --env {env_name}'."
            )
        if remove not in added:
            raise UsageError(f"{remove} is not a webhook of {env_name}'s LiveKit server (see 'damso livekit status').")
        added.remove(remove)
    body = json.dumps({"urls": added}, indent=2).encode()
    s3.put_object(Bucket=bucket, Key=webhooks_key(env_name), Body=body, ContentType="application/json")
    return webhook_urls(env_cfg, added), True


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


def urls(env_cfg: Environment, instance: Instance | None) -> list[str]:
    """Where clients connect: wss://host with TLS, else ws://host-or-ip:port."""
    from damso_ops.render import livekit_host

    lk, host = env_cfg.livekit, livekit_host(env_cfg)
    found = []
    if lk.tls and host:
        found.append(f"wss://{host}")
    elif host and env_cfg.zone_id:
        found.append(f"ws://{host}:{lk.port}")
    if instance and instance.public_ip:
        found.append(f"ws://{instance.public_ip}:{lk.port}")
    return found


def primary_url(env_cfg: Environment, instance: Instance | None) -> str:
    found = urls(env_cfg, instance)
    if not found:
        raise DamsoError("The LiveKit server has no address yet.", hint="Run 'damso livekit up' first.")
    return found[0]
