"""Session fixtures: real daemons, started only when a test needs them, stopped by pid."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.support import leftovers
from tests.support.daemons import Dockerd, Registry
from tests.support.images import ensure_busybox_image

_ENGINE: list[Dockerd] = []  # the Docker engine this run started (none when one already answered)
_START: list[tuple[leftovers.Snapshot, object]] = []  # the controller's snapshot at the start, and the ledger


def pytest_configure(config):
    """One Docker engine for the whole run: started here, in the main process (also when the
    tests run in several processes with pytest-xdist, which inherit DOCKER_HOST), unless one
    answers already or only unit tests run; stopped by its pid in pytest_unconfigure."""
    config.addinivalue_line("markers", "integration: uses real processes (docker, registry, terraform, moto, git)")
    if hasattr(config, "workerinput"):
        return
    if "not integration" not in (config.option.markexpr or ""):
        engine = Dockerd().start()
        os.environ["DOCKER_HOST"] = engine.host
        _ENGINE.append(engine)
    # What is on the machine before any test runs; the ledger's folder goes to the workers with the environment.
    _START.append((leftovers.Snapshot.take(os.environ.get("DOCKER_HOST")), leftovers.start_ledger()))


# The longest test files, longest first (from a run's --durations=0: most deploy a sandbox). pytest-xdist
# hands out whole files (--dist loadfile) in collection order (--no-loadscope-reorder; its own
# order, most tests first, started the production topology 10 min into a run): the longest
# start first, and the short ones fill the gaps at the end.
LONGEST_FIRST = ("integration/test_prod_topology.py", "integration/test_deploy_sandbox.py", "integration/test_rollout.py",
                 "integration/test_host_boot.py", "integration/test_operate.py", "integration/test_livekit.py",
                 "integration/test_terraform_static.py", "integration/test_diagnose_sandbox.py",
                 "integration/test_release_steps.py", "integration/test_dev_gpu.py", "integration/test_logs_sandbox.py",
                 "integration/test_faults.py", "unit/test_bad_input_corpus.py")  # fmt: skip


def pytest_collection_modifyitems(config, items):
    rank = {name: n for n, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(f"{item.path.parent.name}/{item.path.name}", len(rank)))  # stable


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    """After the session's teardown (the workers' too: they have finished), in the controller only:
    fail the run if it left a bridge interface, a network of the engine or a process (tests/support/leftovers.py)."""
    if hasattr(session.config, "workerinput") or not _START:
        return
    start, ledger = _START.pop()
    found = leftovers.compare(start, leftovers.Snapshot.take(os.environ.get("DOCKER_HOST")), ledger)
    spare = {os.getpid()} | {e.proc.pid for e in _ENGINE if e.proc}  # the engine stops in pytest_unconfigure
    found.processes = leftovers.processes(ledger, spare)
    shutil.rmtree(ledger, ignore_errors=True)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if found.others:
        _say(reporter, f"note: new since the start, made by another user of this machine (not counted): {', '.join(found.others)}")
    if found:
        _say(reporter, found.message(), red=True, bold=True)
        if session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _say(reporter, text: str, **markup) -> None:
    if reporter is not None:
        reporter.write("\n")  # after xdist's progress line, which leaves the line open
        reporter.write_line(text, **markup)
    else:
        print(text)


def pytest_unconfigure(config):
    while _ENGINE:
        _ENGINE.pop().stop()


@pytest.fixture(scope="module", autouse=True)
def _no_secret_values_of_other_files():
    """damso runs in the test process (CliRunner) and remembers every secret value it met, to mask
    it: each test file starts knowing none of another file's (a sandbox file's registry user, a
    secret there, masked the same user name in test_build's error)."""
    from damso_ops import redact

    redact.forget_all()


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
