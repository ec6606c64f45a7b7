"""What a deploy needs to know about the LiveKit role: its key pair in SSM and its webhook list.

The server itself is the `livekit` role of an environment and goes through the
normal pipeline (stack, release, reconcile). Its keys live only in SSM under
/damso/<env>/livekit/; the host fills them into livekit.yaml at reconcile time.
Operating the server (status, power, tokens) is in hosts/livekit_server.py.
"""

from __future__ import annotations

import re
import secrets as pysecrets
from collections.abc import Mapping
from pathlib import Path

from damso_ops import redact, secrets, values
from damso_ops.config import Environment
from damso_ops.deploy.store import ReleaseStore
from damso_ops.errors import UsageError

ROLE = "livekit"
KEY_NAME = "LIVEKIT_API_KEY"
SECRET_NAME = "LIVEKIT_API_SECRET"
KEY_NAMES = (KEY_NAME, SECRET_NAME)
KEY_FORMAT = re.compile(r"^[A-Za-z0-9]{3,64}$")
SECRET_FORMAT = re.compile(r"^[A-Za-z0-9+/=._-]{32,128}$")
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
HTTPS_URL = re.compile(r"^https://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~%/-]*)?$")


# ---- keys ---------------------------------------------------------------------------


def generate_keys() -> tuple[str, str]:
    """A key and secret in LiveKit's own format (what `livekit-server generate-keys` makes)."""
    key = "API" + "".join(pysecrets.choice(BASE62) for _ in range(12))
    return key, "".join(pysecrets.choice(BASE62) for _ in range(43))


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


# ---- webhooks -------------------------------------------------------------------------
# The configured URLs (environments.<env>.livekit.webhook_urls) plus those developers
# add with `damso livekit webhooks add`, kept in the env's artifact bucket so that the
# whole team shares one list.


def webhook_urls(env_cfg: Environment, added: list[str]) -> list[str]:
    return list(dict.fromkeys([*env_cfg.livekit.webhook_urls, *added]))


def check_url(url: str) -> None:
    if not HTTPS_URL.match(url) or values.https_url(url):
        raise UsageError(f"{url!r} is not an https:// URL; LiveKit webhook receivers must be reached over TLS "
                         "(like https://3.sodam.store/webhook/livekit).")  # fmt: skip


def change_webhooks(store: ReleaseStore, env_cfg: Environment, add: str | None = None,
                    remove: str | None = None) -> tuple[list[str], bool]:  # fmt: skip
    """Add or remove one URL in the shared list; returns (the full list, whether it changed)."""
    env_name = store.env
    added = store.added_webhooks()
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
    store.set_added_webhooks(added)
    return webhook_urls(env_cfg, added), True


def host(env_cfg: Environment) -> str:
    """The LiveKit server's DNS name (empty without a domain)."""
    return f"{env_cfg.livekit.subdomain}.{env_cfg.domain}" if env_cfg.domain else ""
