"""How a role's containers log: Docker's awslogs driver, to the role's CloudWatch Logs group.

  group    /damso/<project>-<env>/<role>, made by Terraform (terraform/modules/host) with the
           environment's logs.retention_days; the host role may write only its streams
  stream   <instance id>/<compose service>: compose fills ${DAMSO_INSTANCE_ID} from the
           reconcile unit's environment (the instance's id)
  mode     non-blocking with a MAX_BUFFER ring buffer: a slow or unreachable CloudWatch never
           stalls an app's writes; while the buffer is full, new lines are dropped from
           CloudWatch (not from `docker logs`, which Docker's dual logging keeps on the host)
  sandbox  the driver runs inside the Docker engine, so it reaches the emulator through
           awslogs-endpoint and takes its (fake) credentials from the emulator's
           credentials route (damso_ops/emulator.py) through awslogs-credentials-endpoint:
           the engine's own environment is not damso's to change

Compose templates call logging("<service>") for each service (`logging: {{ logging("api") }}`);
it renders one JSON object, which YAML reads as a mapping.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from damso_ops.config import Config

FLUSH = 2  # seconds: the engine sends a container's lines at least this often (Docker's default: 5)
MAX_BUFFER = "4m"  # per container; at ~200 bytes a line, some 20,000 lines waiting for CloudWatch
STREAM_INSTANCE = "${DAMSO_INSTANCE_ID:-unknown}"  # compose interpolation, on the host
CREDENTIALS_PATH = "/damso-sandbox/awslogs-credentials"
# With CloudWatch off: the engine's json-file, rotated so a chatty container cannot fill the disk.
LOCAL_ONLY = {"driver": "json-file", "options": {"max-size": "20m", "max-file": "5"}}


def log_group(project: str, env_name: str, role: str) -> str:
    """The role's log group, as terraform/modules/host names it."""
    return f"/damso/{project}-{env_name}/{role}"


def stream_name(instance: str, service: str) -> str:
    return f"{instance}/{service}"


def split_stream(name: str) -> tuple[str, str]:
    """(instance id, container) of a stream name."""
    instance, _, service = name.partition("/")
    return instance, service


def sandbox_credentials_option(endpoint: str) -> str:
    """awslogs-credentials-endpoint for an emulator at `endpoint`. Docker prefixes the option with
    http://169.254.170.2 (ECS's credentials address); "@host:port/path" makes that address the URL's
    user part, so the request goes to host:port, which is the emulator's."""
    parts = urlsplit(endpoint)
    return f"@{parts.netloc}{CREDENTIALS_PATH}"


def driver(cfg: Config, env_name: str, role: str, service: str, aws_endpoint: str | None = None) -> dict:
    """The compose `logging` mapping of one service."""
    env = cfg.environments[env_name]
    if not env.logs.cloudwatch:
        return LOCAL_ONLY
    options = {
        "awslogs-region": env.region,
        "awslogs-group": log_group(cfg.project.name, env_name, role),
        "awslogs-stream": stream_name(STREAM_INSTANCE, service),
        "awslogs-force-flush-interval-seconds": str(FLUSH),
        "mode": "non-blocking",
        "max-buffer-size": MAX_BUFFER,
    }
    if aws_endpoint:
        options.update({"awslogs-endpoint": aws_endpoint, "awslogs-credentials-endpoint": sandbox_credentials_option(aws_endpoint)})
    return {"driver": "awslogs", "options": options}


def compose_logging(cfg: Config, env_name: str, role: str, aws_endpoint: str | None = None):
    """The templates' logging(service) function."""

    def logging(service: str) -> str:
        return json.dumps(driver(cfg, env_name, role, service, aws_endpoint))

    return logging
