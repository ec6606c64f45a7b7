"""Session fixtures: real daemons, started only when a test needs them, stopped by pid."""

from __future__ import annotations

import os

import pytest

from tests.support.daemons import Dockerd, Registry
from tests.support.images import ensure_busybox_image

_ENGINE: list[Dockerd] = []  # the Docker engine this run started (none when one already answered)


def pytest_configure(config):
    """One Docker engine for the whole run: started here, in the main process (also when the
    tests run in several processes with pytest-xdist, which inherit DOCKER_HOST), unless one
    answers already or only unit tests run; stopped by its pid in pytest_unconfigure."""
    config.addinivalue_line("markers", "integration: uses real processes (docker, registry, terraform, moto, git)")
    if hasattr(config, "workerinput") or "not integration" in (config.option.markexpr or ""):
        return
    engine = Dockerd().start()
    os.environ["DOCKER_HOST"] = engine.host
    _ENGINE.append(engine)


def pytest_unconfigure(config):
    while _ENGINE:
        _ENGINE.pop().stop()


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
