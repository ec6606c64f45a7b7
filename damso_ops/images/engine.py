"""The Docker client, made at the edge (CLI) and passed into library code."""

from __future__ import annotations

import os

from damso_ops.errors import DamsoError


def connect(timeout: int = 600):
    import docker
    import docker.errors

    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except docker.errors.DockerException as exc:
        raise DamsoError(
            f"Cannot reach the Docker engine at {host}: {exc}.",
            hint="Start dockerd, or set DOCKER_HOST to a running engine.",
        ) from None
    return client
