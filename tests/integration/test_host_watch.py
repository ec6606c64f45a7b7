"""The host's watch loop (templates/host/reconcile.py --watch) against a real moto server,
seen through a proxy that records every request and its answer.

The loop's checks are driven tick by tick (its sleep and clock are the test's), so what is
checked is which check notices a move and what each check costs on the wire, never a
wall-clock time. The last test runs the real script as a process, as systemd runs it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time

import boto3
import pytest
from botocore.config import Config

from damso_ops import paths
from damso_ops.deploy.store import ReleaseStore
from tests.support.faultproxy import FaultProxy
from tests.support.net import moto_server

pytestmark = pytest.mark.integration

ENV, ROLE, INSTANCE, BUCKET = "qa", "api", "i-0watch", "watch-artifacts"
SCRIPT = paths.data_dir("templates") / "host" / "reconcile.py"


def _reconcile():
    spec = importlib.util.spec_from_file_location("reconcile_watch", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def moto_port():
    with moto_server() as url:
        yield int(url.rsplit(":", 1)[1])


@pytest.fixture
def aws(moto_port, monkeypatch, tmp_path, request):
    """A fresh bucket behind a recording proxy; the host's environment points at the proxy."""
    bucket = f"{BUCKET}-{request.node.name.replace('_', '-')[:30]}"
    with FaultProxy(moto_port) as proxy:
        env = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_REGION": "us-east-1",
               "AWS_ENDPOINT_URL": proxy.url, "DAMSO_ENV": ENV, "DAMSO_ROLE": ROLE, "DAMSO_BUCKET": bucket,
               "DAMSO_INSTANCE_ID": INSTANCE, "DAMSO_WORKDIR": str(tmp_path / "host")}  # fmt: skip
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        direct = boto3.client("s3", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{moto_port}",
                              config=Config(s3={"addressing_style": "path"}))  # fmt: skip
        direct.create_bucket(Bucket=bucket)
        yield ReleaseStore(direct, bucket, ENV), proxy, env


class Ticks:
    """The loop's clock and sleep: each sleep is one check done; actions run between checks."""

    def __init__(self, every: float, actions: dict | None = None):
        self.now, self.every, self.done, self.actions = 1000.0, every, 0, actions or {}

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.done += 1
        self.now += max(seconds, 0.0)
        if self.done in self.actions:
            self.actions[self.done]()


def watch(module, ticks: int, actions=None, period: float = 3600.0):
    """Run the loop for `ticks` checks; return the check numbers (1-based) at which it reconciled."""
    host, clock, runs = module.Host(), Ticks(5.0, actions), []
    module.watch(host, run=lambda: runs.append(clock.done + 1), every=5.0, period=period,
                 sleep=clock.sleep, clock=clock.clock, ticks=ticks)  # fmt: skip
    return runs


def pointer_gets(proxy: FaultProxy) -> list[tuple[str, int]]:
    return [(path.split("/", 2)[2].split("?")[0], status) for method, path, status in proxy.answered
            if method == "GET" and "/current" in path]  # fmt: skip


def test_an_unchanged_pointer_costs_one_304_per_check_and_no_run(aws):
    store, proxy, _ = aws
    store.set_role_release(ROLE, "r1")
    store.make_current("r1", "c1")
    module = _reconcile()
    before = len(proxy.answered)
    runs = watch(module, ticks=10)
    assert runs == [1]  # at start only
    new = proxy.answered[before:]
    assert {m for m, _, _ in new} == {"GET"}  # no PUT, no listing: reads of the pointers only
    gets = pointer_gets(proxy)
    role_key, instance_key = f"{ENV}/roles/{ROLE}/current", f"{ENV}/instances/{INSTANCE}/current"
    assert [s for k, s in gets if k == role_key] == [200] + [304] * 9
    assert [s for k, s in gets if k == instance_key] == [404] * 10
    assert not [k for k, _ in gets if k == f"{ENV}/current"]  # the role's pointer decides: the env's is not read


def test_a_moved_pointer_is_reconciled_at_the_next_check(aws):
    store, proxy, _ = aws
    store.set_role_release(ROLE, "r1")
    module = _reconcile()
    actions = {
        3: lambda: store.set_role_release(ROLE, "r2"),  # a wave moves the role
        6: lambda: store.set_instance_release(INSTANCE, "r3"),  # one instance of several moves ahead
        9: lambda: store.make_current("r4", "c4"),  # less specific than the pointers there: no run
        11: lambda: store.clear_instance_release(INSTANCE),  # back to the role's pointer
        13: lambda: store.set_role_release(ROLE, "r2"),  # the same content again: same ETag, no run
    }
    assert watch(module, ticks=16, actions=actions) == [1, 4, 7, 12]


def test_the_pointer_appearing_and_the_period_both_reconcile(aws):
    store, _, _ = aws
    module = _reconcile()
    # No pointer at all yet: the env's is read too (404) until damso's first deploy writes it.
    runs = watch(module, ticks=30, actions={2: lambda: store.make_current("r1", "c1")}, period=60.0)
    assert runs == [1, 3, 15, 27]  # at start, the new pointer, then every 12th check of 5 s (60 s)


def test_s3_unreachable_for_a_check_does_not_stop_the_loop(aws, capsys):
    store, proxy, _ = aws
    store.set_role_release(ROLE, "r1")
    module = _reconcile()
    actions = {2: lambda: proxy.add("reset", "GET", "/roles/", times=None),  # check 3 fails, retries and all
               3: proxy.clear, 4: lambda: store.set_role_release(ROLE, "r2")}  # fmt: skip
    assert watch(module, ticks=8, actions=actions) == [1, 5]
    assert capsys.readouterr().err.count("cannot read the pointers") == 1


def _lines(process: subprocess.Popen, found: list[str]) -> threading.Thread:
    def read():
        for line in process.stderr:
            found.append(line.rstrip("\n"))

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def _wait(found: list[str], text: str, count: int = 1, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while sum(text in line for line in found) < count:
        assert time.monotonic() < deadline, f"no {count}x {text!r} in:\n" + "\n".join(found)
        time.sleep(0.05)


def test_the_script_with_watch_reconciles_a_move_and_a_reload(aws, tmp_path):
    """The real process, as damso-reconcile.service runs it: a move of the env's pointer to a release
    that is not there makes a full run, which reports it failed; SIGHUP asks for a run."""
    store, proxy, env = aws
    process = subprocess.Popen([sys.executable, str(SCRIPT), "--watch", "--every", "0.2", "--period", "3600"],
                               env={**os.environ, **env}, stderr=subprocess.PIPE, text=True)  # fmt: skip
    found: list[str] = []
    _lines(process, found)
    try:
        _wait(found, "no release yet")  # the run at start
        store.make_current("r-missing", "c1")
        _wait(found, f"reconciling ({ENV}/current changed)")
        _wait(found, "r-missing failed")
        report = json.loads(store.read(store.keys.report(INSTANCE)))
        assert report["status"] == "failed" and report["release"] == "r-missing"
        process.send_signal(signal.SIGHUP)
        _wait(found, "reconciling (reload asked)")
        _wait(found, "r-missing failed", count=2)
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert sum("reconciling" in line for line in found) == 3, "\n".join(found)


def test_the_one_shot_run_is_unchanged(aws):
    """Without arguments the script runs once and exits (the sandbox's local convergence)."""
    store, _, env = aws
    store.make_current("r-missing", "c1")
    out = subprocess.run([sys.executable, str(SCRIPT)], env={**os.environ, **env}, capture_output=True, text=True,
                         timeout=60)  # fmt: skip
    assert out.returncode == 1 and "r-missing failed" in out.stderr and "reconciling" not in out.stderr
