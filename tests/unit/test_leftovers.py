"""The end-of-run check counts only bridges and networks that are new and this run's."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support import leftovers
from tests.support.leftovers import Snapshot
from tests.support.net import wait_until

ROOT = Path(__file__).resolve().parents[2]
OURS, OTHERS, OLD = "a" * 64, "b" * 64, "c" * 64


def net(name: str, project: str = "") -> dict:
    return {"name": name, "labels": {"com.docker.compose.project": project} if project else {}}


def test_only_new_bridges_and_networks_of_this_run_count(tmp_path, monkeypatch):
    monkeypatch.setenv(leftovers.LEDGER_ENV, str(tmp_path))
    leftovers.note_compose_project("damso-sandbox-")
    leftovers.note_bridges("dmso1234abcd", "br-111111111111")
    start = Snapshot({"docker0", "br-" + OLD[:12]}, {OLD: net("old_default", "damso-sandbox-api")})
    end = Snapshot(
        {"docker0", "br-" + OLD[:12], "br-" + OURS[:12], "br-" + OTHERS[:12], "dmso1234abcd", "dmso9999ffff", "br-111111111111"},
        {OLD: net("old_default", "damso-sandbox-api"), OURS: net("damso-sandbox-web_default", "damso-sandbox-web"),
         OTHERS: net("damso-lksandbox-livekit_default", "damso-lksandbox-livekit")},
    )  # fmt: skip
    found = leftovers.compare(start, end, tmp_path)
    assert found.bridges == ["br-111111111111", "br-" + OURS[:12], "dmso1234abcd"]
    assert found.networks == [f"damso-sandbox-web_default ({OURS[:12]}, compose project damso-sandbox-web)"]
    assert found.others == [f"network damso-lksandbox-livekit_default ({OTHERS[:12]}, compose project damso-lksandbox-livekit)",
                            f"bridge br-{OTHERS[:12]}", "bridge dmso9999ffff"]  # fmt: skip
    assert "ip link del dmso1234abcd" in found.message()


def test_nothing_new_is_nothing_left(tmp_path):
    same = Snapshot({"docker0"}, {OLD: net("bridge")})
    assert not leftovers.compare(same, same, tmp_path).bridges
    assert leftovers.compare(Snapshot({"docker0"}, None), Snapshot({"docker0"}, None), tmp_path) == leftovers.Leftovers()


@pytest.mark.integration
def test_a_run_that_leaves_a_bridge_fails(tmp_path):
    """A pytest run whose test adds a bridge and does not remove it exits non-zero and names it."""
    link = f"dmsotest{os.getpid() % 10000:04d}"
    (tmp_path / "conftest.py").write_text("from tests.conftest import pytest_configure, pytest_sessionfinish, pytest_unconfigure  # noqa: F401\n")
    (tmp_path / "test_leak.py").write_text(textwrap.dedent(f"""
        import subprocess
        from tests.support import leftovers

        def test_leaks():
            leftovers.note_bridges("{link}")
            subprocess.run(["ip", "link", "add", "{link}", "type", "bridge"], check=True)
    """))
    try:
        out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not integration",
                              "--rootdir", str(tmp_path), str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    finally:
        subprocess.run(["ip", "link", "del", link], capture_output=True)
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"bridge interface {link}" in out.stdout and "1 passed" in out.stdout, out.stdout


def test_a_process_of_this_run_still_alive_is_named(tmp_path):
    """Found by this run's ledger in its environment, which its children inherit; spared pids are not."""
    env = {**os.environ, leftovers.LEDGER_ENV: str(tmp_path)}
    proc = subprocess.Popen(["sh", "-c", "sleep 60 & echo $!; wait"], env=env, stdout=subprocess.PIPE, text=True)
    child = int(proc.stdout.readline())
    try:  # the shell prints the child's pid once forked, maybe before the child has become `sleep`
        wait_until(lambda: Path(f"/proc/{child}/cmdline").read_bytes().startswith(b"sleep\0"), 10, "the child to exec sleep")
        found = leftovers.processes(tmp_path, spare={os.getpid()}, grace=0)
        assert sorted(line.split()[0] for line in found) == sorted([str(proc.pid), str(child)]), found
        assert f"{child} sleep 60" in found
        assert leftovers.processes(tmp_path, spare={proc.pid, child}, grace=0) == []
        assert leftovers.processes(tmp_path / "other", spare=set(), grace=0) == []
    finally:
        os.kill(child, 9)  # by their pids
        proc.kill()
        proc.wait()
