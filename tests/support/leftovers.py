"""What a test run leaves on this machine: bridge interfaces and the Docker engine's networks.

The run's controller (the pytest main process, never an xdist worker) takes a snapshot when the
run starts and another after the session's teardown (tests/conftest.py), and fails the run if
this run left a bridge or a network behind.

Several runs may share this machine's kernel and Docker engine at once (other test runs, a demo,
a bench), and they make and remove bridges and networks meanwhile. So only what was not there
at the start AND is this run's counts. A run knows what is its own from a ledger, a folder
named by DAMSO_TEST_LEDGER that the controller makes and its xdist workers inherit:
- a network of the engine is this run's when its compose project (label com.docker.compose.project)
  starts with a prefix this run noted (note_compose_project): compose projects are the only
  networks the tests make on the engine. Two runs using one compose project on one engine clash
  anyway (the same container names), so a prefix stands for one run at a time;
- a bridge interface is this run's when this run noted its name: each test machine notes its
  inner engine's bridge (dmso<token>) and the br-<id> bridge of every network its inner engine
  made (tests/support/machine.py), or when it is the br-<id> bridge of a network that counts.
New bridges and networks that are not this run's are named in a note, never failed on.
Processes: every process this run started (workers, daemons, damso, terraform, the emulator, and
what they started) inherits DAMSO_TEST_LEDGER with this run's folder in its environment, and no
other process has that value; any still alive at the end, but the engine the run started itself
(stopped after the check) and the controller, is left behind.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

LEDGER_ENV = "DAMSO_TEST_LEDGER"
COMPOSE_PROJECT = "com.docker.compose.project"


def _note(kind: str, value: str) -> None:
    folder = os.environ.get(LEDGER_ENV)
    if not folder or not Path(folder).is_dir():
        return  # not under a pytest run that checks (a bench, a script)
    # One short line per write, in append mode: writes of several worker processes do not mix.
    with open(Path(folder) / kind, "a") as fh:
        fh.write(value + "\n")


def note_compose_project(prefix: str) -> None:
    """Compose projects whose names start with `prefix` are this run's (their networks too)."""
    _note("compose-projects", prefix)


def note_bridges(*names: str) -> None:
    """Bridge interfaces (by link name) that this run made, directly or through a machine's engine."""
    for name in names:
        _note("bridges", name)


def bridge_of(network_id: str) -> str:
    """The link name Docker gives a user-defined bridge network."""
    return f"br-{network_id[:12]}"


def start_ledger() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="damso-test-ledger-"))
    os.environ[LEDGER_ENV] = str(folder)
    return folder


def _read(folder: Path, kind: str) -> set[str]:
    path = folder / kind
    return set(path.read_text().split()) if path.is_file() else set()


def bridges() -> set[str]:
    """Names of this machine's bridge interfaces (ip -br link show type bridge)."""
    out = subprocess.run(["ip", "-br", "link", "show", "type", "bridge"], capture_output=True, text=True)
    return {line.split()[0].split("@")[0] for line in out.stdout.splitlines() if line.strip()}


def networks(docker_host: str | None) -> dict[str, dict] | None:
    """The engine's networks (id → name and labels); None when no engine answers."""
    if not docker_host:
        return None
    import docker

    try:
        client = docker.DockerClient(base_url=docker_host, timeout=30)
        try:
            return {n["Id"]: {"name": n["Name"], "labels": n.get("Labels") or {}} for n in client.api.networks()}
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - no engine: nothing of its to compare
        return None


@dataclass
class Snapshot:
    bridges: set[str]
    networks: dict[str, dict] | None

    @classmethod
    def take(cls, docker_host: str | None) -> "Snapshot":
        return cls(bridges(), networks(docker_host))


@dataclass
class Leftovers:
    bridges: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)  # "name (id)"
    others: list[str] = field(default_factory=list)  # new, but not this run's

    processes: list[str] = field(default_factory=list)  # "pid command line"

    def __bool__(self) -> bool:
        return bool(self.bridges or self.networks or self.processes)

    def message(self) -> str:
        lines = ["This test run left these behind (each test or fixture must remove what it made):"]
        lines += [f"  bridge interface {b} (ip link del {b})" for b in self.bridges]
        lines += [f"  Docker network {n}" for n in self.networks]
        lines += [f"  process {p}" for p in self.processes]
        return "\n".join(lines)


def compare(start: Snapshot, end: Snapshot, ledger: Path) -> Leftovers:
    """What is new since `start` and this run's (see the module's docstring for how it decides)."""
    prefixes = _read(ledger, "compose-projects")
    noted = _read(ledger, "bridges")
    found = Leftovers()
    ours_bridges: set[str] = set()
    if start.networks is not None and end.networks is not None:
        for nid, net in sorted(end.networks.items(), key=lambda kv: kv[1]["name"]):
            if nid in start.networks:
                continue
            project = net["labels"].get(COMPOSE_PROJECT, "")
            what = f"{net['name']} ({nid[:12]}{', compose project ' + project if project else ''})"
            if project and any(project.startswith(p) for p in prefixes):
                found.networks.append(what)
                ours_bridges.add(bridge_of(nid))
            else:
                found.others.append(f"network {what}")
    for name in sorted(end.bridges - start.bridges):
        if name in noted or name in ours_bridges:
            found.bridges.append(name)
        else:
            found.others.append(f"bridge {name}")
    return found


def processes(ledger: Path, spare: set[int], grace: float = 10) -> list[str]:
    """This run's processes still alive (see the module's docstring), but `spare`'s; those that end
    within `grace` seconds (workers shutting down) are not counted."""
    mark = f"{LEDGER_ENV}={ledger}".encode()
    deadline = time.monotonic() + grace
    while True:
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) in spare:
                continue
            try:
                if mark in (entry / "environ").read_bytes().split(b"\0"):
                    cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                    found.append(f"{entry.name} {cmdline[:200]}")
            except OSError:  # gone meanwhile, or not readable
                continue
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)
