"""Session fixtures: real daemons, started only when a test needs them, stopped by pid."""

from __future__ import annotations

import pytest

from tests.support.daemons import Dockerd, Registry
from tests.support.images import ensure_busybox_image


def pytest_configure(config):
    config.addinivalue_line("markers", "integration: uses real processes (docker, registry, terraform, moto, git)")


@pytest.fixture(scope="session")
def dockerd():
    with Dockerd() as daemon:
        yield daemon


@pytest.fixture(scope="session")
def docker_client(dockerd):
    import docker

    client = docker.DockerClient(base_url=dockerd.host, timeout=300)
    yield client
    client.close()


@pytest.fixture(scope="session")
def busybox_image(docker_client):
    return ensure_busybox_image(docker_client)


@pytest.fixture(scope="session")
def registry():
    with Registry() as reg:
        yield reg


@pytest.fixture(scope="session")
def git_root(tmp_path_factory):
    return tmp_path_factory.mktemp("git")
