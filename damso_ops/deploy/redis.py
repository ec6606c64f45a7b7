"""Redis AUTH without the token ever entering Terraform state.

The data stack makes the replication group with TLS in transit and no token
(terraform/modules/data). After it is applied, damso keeps the token as a
SecureString `/damso/<env>/data/REDIS_AUTH_TOKEN` (generated once), turns AUTH on
with ElastiCache's API (ROTATE, which accepts both the old "no token" and the new
one while clients move), and copies the token to every role that lists
REDIS_AUTH_TOKEN among its secrets, like any other secret.

With `data.redis_tls = false` there is no AUTH (ElastiCache allows it only with
transit encryption): ensure_auth makes no token and leaves the group alone, and
the config refuses a role that lists REDIS_AUTH_TOKEN.
"""

from __future__ import annotations

import secrets as pysecrets
import string
from collections.abc import Callable

from damso_ops import secrets
from damso_ops.config import Environment
from damso_ops.timing import wait_for

NAME = "REDIS_AUTH_TOKEN"
OWNER = "data"  # the SSM prefix the token lives under: /damso/<env>/data/
ALPHABET = string.ascii_letters + string.digits  # ElastiCache refuses / " @ % and spaces

Event = Callable[[str, str], None]


def token(ssm, env_name: str) -> tuple[str, bool]:
    """(the environment's Redis AUTH token, whether it was made now)."""
    name = secrets.parameter(env_name, OWNER, NAME)
    found = ssm.get_parameters(Names=[name], WithDecryption=True)["Parameters"]
    if found:
        return found[0]["Value"], False
    value = "".join(pysecrets.choice(ALPHABET) for _ in range(64))
    secrets.put(ssm, env_name, OWNER, NAME, value)
    return value, True


def ensure_auth(elasticache, ssm, env_name: str, env: Environment, group_id: str, on_event: Event,
                poll: float = 15.0, timeout: float = 1800) -> list[str]:  # fmt: skip
    """AUTH on for the replication group with the token from SSM, and the token in each role that
    lists it. Returns what was done; nothing without TLS (data.redis_tls = false: no AUTH in ElastiCache)."""
    if not env.data.redis_tls:
        return []
    value, made = token(ssm, env_name)
    done = ["a generated Redis AUTH token"] if made else []
    group = elasticache.describe_replication_groups(ReplicationGroupId=group_id)["ReplicationGroups"][0]
    if not group.get("AuthTokenEnabled"):
        on_event("redis", f"turning on AUTH for {group_id} (the token stays in SSM, never in Terraform state)")
        elasticache.modify_replication_group(ReplicationGroupId=group_id, AuthToken=value,
                                             AuthTokenUpdateStrategy="ROTATE", ApplyImmediately=True)  # fmt: skip

        def available() -> bool | None:
            status = elasticache.describe_replication_groups(ReplicationGroupId=group_id)["ReplicationGroups"][0]["Status"]
            return True if status == "available" else None

        wait_for(available, timeout=timeout, interval=poll, what=f"{group_id} available again")
        done.append(f"AUTH on for {group_id}")
    for role, spec in sorted(env.roles.items()):
        if NAME in spec.secrets:
            have = ssm.get_parameters(Names=[secrets.parameter(env_name, role, NAME)], WithDecryption=True)["Parameters"]
            if not have or have[0]["Value"] != value:
                secrets.put(ssm, env_name, role, NAME, value)
                done.append(f"{role}/{NAME} (from the data stack's token)")
    return done
