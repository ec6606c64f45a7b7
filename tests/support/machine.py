"""Debian 12 systemd machines in containers, playing EC2 instances for host boot tests.

A machine boots /lib/systemd/systemd in a container (see /work/shared/testing.md,
"A real host boot") on the host's network, so it reaches the registry, the AWS
emulator and the fake instance metadata service on 127.0.0.1. Its own dockerd is
configured before it is installed (/etc/docker/daemon.json: vfs, no iptables, no
masquerading) and shares this machine's network namespace, so it must not touch
docker0: with "bridge": "none" dockerd deletes any link named docker0 at start
(this machine's own engine then loses its default network). Each machine's engine
gets a bridge of its own instead, made before the boot and deleted after; the
bridges its compose networks add are removed with the machine.

Images, built once and kept (tagged by a hash of their recipe):
- base: mmdebstrap minbase with systemd, python3, and a stand-in for cloud-init
  that runs /var/lib/cloud/user-data once, as root, at first boot (like
  cloud-init's scripts-user; output in /var/log/cloud-init-output.log);
- docker: base with Debian's docker.io installed, no boto3, no compose (the
  Deep Learning AMI case).
apt's downloads are kept in a cache folder; each machine gets a copy of it (hard links) at
/var/cache/apt/archives, and what it downloaded goes back to the cache when it is removed.
Every container is stopped and removed by its id.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import secrets
import shutil
import subprocess
import tarfile
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from tests.support import leftovers
from tests.support.daemons import CACHE
from tests.support.net import wait_until

SUITE = "bookworm"
PACKAGES = ("systemd", "systemd-sysv", "dbus", "ca-certificates", "python3")
LABEL = "damso-test-machine"
CGROUP_PARENT = "damso-test-machines"
DAEMON_JSON = {"storage-driver": "vfs", "iptables": False, "ip-masq": False}

DONE = "/var/lib/cloud/user-data.done"  # the user-data's exit code, written once it returned
CLOUD_INIT_UNIT = """\
[Unit]
Description=test stand-in for cloud-init: run the instance's user-data once, at first boot
Wants=network-online.target
After=network-online.target
ConditionPathExists=/var/lib/cloud/user-data
ConditionPathExists=!/var/lib/cloud/user-data.done

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/damso-test-cloud-init

[Install]
WantedBy=multi-user.target
"""
CLOUD_INIT = """\
#!/bin/sh
# Run the user-data as root, once (cloud-init does not run it again, not even when it failed).
chmod 0700 /var/lib/cloud/user-data
/var/lib/cloud/user-data >>/var/log/cloud-init-output.log 2>&1
rc=$?
echo "$rc" >/var/lib/cloud/user-data.done
exit "$rc"
"""
APT_LOCK_UNIT = """\
[Unit]
Description=test stand-in for unattended-upgrades at first boot: hold apt's locks for a while
DefaultDependencies=no
Before=damso-test-cloud-init.service

[Service]
Type=notify
ExecStart=/usr/bin/python3 /usr/local/sbin/damso-test-apt-lock
"""
APT_LOCK = """\
import fcntl, os, socket, time

seconds = float(open("/etc/damso-test/apt-lock-seconds").read())
held = []
# Not /var/cache/apt/archives/lock: the test machines share that folder (a cache), and its lock with it.
for path in ("/var/lib/apt/lists/lock", "/var/lib/dpkg/lock-frontend", "/var/lib/dpkg/lock"):
    fh = open(path, "a")
    fcntl.lockf(fh, fcntl.LOCK_EX)  # the fcntl locks apt and dpkg take
    held.append(fh)
addr = os.environ["NOTIFY_SOCKET"]
with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
    s.sendto(b"READY=1", "\\0" + addr[1:] if addr.startswith("@") else addr)
print(f"holding apt's locks for {seconds:.0f} s", flush=True)
time.sleep(seconds)
"""
OVERLAY = {
    "etc/docker/daemon.json": json.dumps(DAEMON_JSON),
    "etc/systemd/system/damso-test-cloud-init.service": CLOUD_INIT_UNIT,
    "usr/local/sbin/damso-test-cloud-init": CLOUD_INIT,
    "etc/systemd/system/damso-test-apt-lock.service": APT_LOCK_UNIT,
    "usr/local/sbin/damso-test-apt-lock": APT_LOCK,
}
ENABLED = {"etc/systemd/system/multi-user.target.wants/damso-test-cloud-init.service":
           "/etc/systemd/system/damso-test-cloud-init.service"}  # fmt: skip
DOCKER_IMAGE_SCRIPT = (
    "set -e; export DEBIAN_FRONTEND=noninteractive; apt-get -q update; "
    "apt-get -q -y install --no-install-recommends docker.io; rm -rf /var/lib/apt/lists/*; "
    "! python3 -c 'import boto3' 2>/dev/null; ! command -v docker-compose"
)


def cgroup_v2() -> bool:
    """This machine mounts only the cgroup2 hierarchy at /sys/fs/cgroup (a Debian 13 host; Debian 12's
    is cgroup v1, or hybrid). Then a machine shares this machine's cgroup namespace (Docker gives a
    container a private one on cgroup v2, where /sys/fs/cgroup bound in would be this machine's root
    cgroup while the machine's systemd believes it its own), and its engine, the systemd driver's on
    cgroup v2, takes no cgroup-parent folder (only a slice; dockerd refuses to start with a folder):
    its containers' scopes are in the machine's own cgroup, removed with it."""
    return Path("/sys/fs/cgroup/cgroup.controllers").exists()


def apt_cache() -> Path:
    path = CACHE / "machine-apt-archives"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _lend_apt_cache(name: str) -> Path:
    """A folder of its own for one machine's /var/cache/apt/archives, holding (hard links to) every
    cached .deb: machines booting side by side must not share apt's lock on that folder."""
    folder = CACHE / "machine-apt-lent" / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for deb in apt_cache().glob("*.deb"):
        os.link(deb, folder / deb.name)
    return folder


def _return_apt_cache(folder: Path) -> None:
    """Keep what the machine downloaded for the next ones; remove its folder."""
    for deb in folder.glob("*.deb"):
        if not (apt_cache() / deb.name).exists():
            os.link(deb, apt_cache() / deb.name)
    shutil.rmtree(folder, ignore_errors=True)


def _recipe_hash(*parts: object) -> str:
    return hashlib.sha256(json.dumps([SUITE, PACKAGES, OVERLAY, ENABLED, *parts], sort_keys=True).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Images:
    base: str
    docker: str


@contextmanager
def _build_lock():
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "machine-images.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _exists(client, name: str) -> bool:
    import docker.errors

    try:
        client.images.get(name)
        return True
    except docker.errors.ImageNotFound:
        return False


def ensure_images(client) -> Images:
    """The machine images, built when missing (about a minute), else reused."""
    base_hash = _recipe_hash()
    images = Images(f"damso-test/machine:base-{base_hash}", f"damso-test/machine:docker-{_recipe_hash(DOCKER_IMAGE_SCRIPT)}")
    with _build_lock():
        if not _exists(client, images.base):
            _build_base(client, images.base)
        if not _exists(client, images.docker):
            _build_docker(client, images.base, images.docker)
        _remove_outdated(client, images)
    return images


def _remove_outdated(client, images: Images) -> None:
    """Machine images of an earlier recipe (by id; one a container still uses stays)."""
    import docker.errors

    repo = images.base.split(":")[0]
    for image in client.images.list(name=repo):
        if not set(image.tags) & {images.base, images.docker}:
            try:
                client.images.remove(image.id, noprune=False)
            except docker.errors.APIError:
                pass


def _build_base(client, name: str) -> None:
    if not shutil.which("mmdebstrap"):
        raise RuntimeError("mmdebstrap is not installed: run 'make setup'.")
    with tempfile.TemporaryDirectory(prefix="damso-machine-", dir=CACHE) as tmp:
        overlay = Path(tmp) / "overlay"
        for path, text in OVERLAY.items():
            target = overlay / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            target.chmod(0o755 if "/sbin/" in path else 0o644)
        for path, link in ENABLED.items():
            (overlay / path).parent.mkdir(parents=True, exist_ok=True)
            (overlay / path).symlink_to(link)
        rootfs = Path(tmp) / "rootfs.tar"
        argv = ["mmdebstrap", "--variant=minbase", "--quiet", f"--include={','.join(PACKAGES)}",
                f"--customize-hook=sync-in {overlay} /", SUITE, str(rootfs)]  # fmt: skip
        out = subprocess.run(argv, capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"mmdebstrap failed:\n{out.stderr[-3000:]}")
        repo, tag = name.split(":")
        client.api.import_image(src=str(rootfs), repository=repo, tag=tag)


def _build_docker(client, base: str, name: str) -> None:
    archives = _lend_apt_cache(f"image-build-{secrets.token_hex(4)}")
    container = client.containers.run(base, ["/bin/bash", "-c", DOCKER_IMAGE_SCRIPT], detach=True, network_mode="host",
                                      volumes={str(archives): {"bind": "/var/cache/apt/archives", "mode": "rw"}},
                                      labels={LABEL: "image-build"})  # fmt: skip
    try:
        status = container.wait(timeout=600)
        if status["StatusCode"] != 0:
            raise RuntimeError(f"building {name} failed:\n{container.logs().decode(errors='replace')[-3000:]}")
        repo, tag = name.split(":")
        container.commit(repository=repo, tag=tag)
    finally:
        container.remove(force=True)
        _return_apt_cache(archives)


def _tar(files: dict[str, tuple[bytes, int]], links: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, (data, mode) in files.items():
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
        for path, target in links.items():
            info = tarfile.TarInfo(path)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buf.getvalue()


@dataclass
class Machine:
    """One systemd machine: created with its user-data in place, booted, stopped and removed by id."""

    client: object
    image: str
    user_data: str
    name: str
    apt_lock_seconds: float = 0
    extra_hosts: dict[str, str] = field(default_factory=dict)  # host name → address, in its /etc/hosts
    container: object = None
    booted_at: float = 0.0  # time.monotonic() of the last start
    started: str = ""  # and its UTC time, as the hosts' reports write it
    token: str = field(default_factory=lambda: secrets.token_hex(4))
    inner_bridges: list[str] = field(default_factory=list)  # br-<id> of its engine's networks, as last seen

    @property
    def cgroup_parent(self) -> str:
        return f"/{CGROUP_PARENT}/{self.name}-{self.token}"

    @property
    def bridge(self) -> str:
        return f"dmso{self.token}"  # at most 15 characters, a Linux link name's limit

    @property
    def apt_archives(self) -> Path:
        return CACHE / "machine-apt-lent" / f"{self.name}-{self.token}"

    def create(self) -> "Machine":
        leftovers.note_bridges(self.bridge)
        subprocess.run(["ip", "link", "add", self.bridge, "type", "bridge"], check=True, capture_output=True)
        _lend_apt_cache(self.apt_archives.name)
        self.container = self.client.containers.create(
            self.image, ["/lib/systemd/systemd"],
            network_mode="host", cap_add=["ALL"], cap_drop=["SYS_RESOURCE"],
            security_opt=["seccomp=unconfined", "apparmor=unconfined"],
            volumes={"/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"},
                     str(self.apt_archives): {"bind": "/var/cache/apt/archives", "mode": "rw"}},
            tmpfs={"/run": "", "/run/lock": ""}, environment={"container": "docker"},
            cgroupns="host" if cgroup_v2() else None,
            stop_signal="SIGRTMIN+3", labels={LABEL: self.name}, extra_hosts=self.extra_hosts,
        )  # fmt: skip
        # The inner engine's containers get cgroups of their own under a folder removed at the end
        # (cgroup v1; on cgroup v2 they are in the machine's own, see cgroup_v2()).
        daemon = {**DAEMON_JSON, "bridge": self.bridge}
        if not cgroup_v2():
            daemon["cgroup-parent"] = self.cgroup_parent
        files = {"var/lib/cloud/user-data": (self.user_data.encode(), 0o700),
                 "etc/docker/daemon.json": (json.dumps(daemon).encode(), 0o644)}  # fmt: skip
        links = {}
        if self.apt_lock_seconds:
            files["etc/damso-test/apt-lock-seconds"] = (str(self.apt_lock_seconds).encode(), 0o644)
            links["etc/systemd/system/multi-user.target.wants/damso-test-apt-lock.service"] = (
                "/etc/systemd/system/damso-test-apt-lock.service"
            )
        self.container.put_archive("/", _tar(files, links))
        return self

    def start(self) -> None:
        self.booted_at = time.monotonic()
        self.started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.container.start()

    def boot(self) -> "Machine":
        self.create()
        self.start()
        return self

    def stop(self, timeout: int = 60) -> None:
        """A clean shutdown (SIGRTMIN+3: systemd stops its units, the inner engine its containers).
        The bridges of its engine's networks stay in this machine's namespace: they are noted first,
        for remove() to delete even if the machine does not run again."""
        self.learn_networks()
        self.container.stop(timeout=timeout)

    def learn_networks(self) -> list[str]:
        """The bridge links (br-<id>) of the networks the machine's engine has now, noted for remove()
        and for the run's leftover check (tests/support/leftovers.py)."""
        code, out = self.sh("docker network ls -q --no-trunc --filter driver=bridge", timeout=60)
        links = [leftovers.bridge_of(n) for n in out.split() if code == 0 and len(n) == 64]
        new = [link for link in links if link not in self.inner_bridges]
        self.inner_bridges += new
        leftovers.note_bridges(*new)
        return links

    def sh(self, script: str, timeout: float = 120) -> tuple[int, str]:
        """Run a shell script as root in the machine; (exit code, stdout+stderr)."""
        argv = ["timeout", str(int(timeout)), "/bin/bash", "-c", script]
        code, out = self.container.exec_run(argv, demux=False)
        return code, out.decode(errors="replace")

    def read(self, path: str) -> str | None:
        code, out = self.sh(f"cat {path}")
        return out if code == 0 else None

    def user_data_exit(self, timeout: float = 60) -> str:
        """The user-data's exit code, once the cloud-init stand-in has written it ("" if it never
        did). The host can report healthy before that: the bootstrap starts damso-reconcile and
        then prints its last line, and the stand-in writes the code only after the script returns."""
        try:
            wait_until(lambda: self.read(DONE) is not None, timeout, f"{DONE} on {self.name}", interval=0.5)
        except TimeoutError:
            return ""
        return (self.read(DONE) or "").strip()

    def diagnose(self) -> str:
        """What a person debugging the host would look at (see docs/deploy.md)."""
        script = (
            "echo '--- cloud-init-output.log'; tail -n 40 /var/log/cloud-init-output.log; "
            "echo '--- user-data exit'; cat /var/lib/cloud/user-data.done; "
            "echo '--- service'; systemctl status damso-reconcile --no-pager -n 0; "
            "echo '--- journal damso-reconcile'; journalctl -u damso-reconcile --no-pager -n 40; "
            "echo '--- journal of the engine (starts, stops, exits)'; journalctl -u docker -u containerd --no-pager "
            "| grep -v -e level=info -e level=warning | tail -n 30; "
            "echo '--- failed units'; systemctl --failed --no-pager; "
            "echo '--- docker ps'; docker ps -a --no-trunc; "
            "echo '--- containers state'; docker ps -aq | xargs -r docker inspect -f "
            "'{{.Name}} {{.State.Status}} exit={{.State.ExitCode}} oom={{.State.OOMKilled}} started={{.State.StartedAt}} "
            "finished={{.State.FinishedAt}} restarts={{.RestartCount}} policy={{.HostConfig.RestartPolicy.Name}}'"
        )
        try:
            return self.sh(script, timeout=30)[1]
        except Exception as exc:  # noqa: BLE001 - diagnostics must not hide the failure
            return f"(no diagnostics: {exc})"

    def remove(self) -> None:
        """Remove the machine and what its engine left in this machine's network namespace and cgroups."""
        import docker.errors

        if self.container is not None:
            try:
                self.container.reload()
                if self.container.status == "running":
                    # The inner engine removes its containers (by id) and the bridges of their networks.
                    self.learn_networks()
                    self.sh("docker ps -aq | xargs -r docker rm -f >/dev/null; docker network prune -f >/dev/null", timeout=60)
                self.container.remove(force=True, v=True)
            except docker.errors.NotFound:
                pass
            self.container = None
        # What the engine did not remove (it was stopped, or it failed to): this machine's namespace keeps them.
        for link in [*self.inner_bridges, self.bridge]:
            if Path(f"/sys/class/net/{link}").exists():
                subprocess.run(["ip", "link", "del", link], capture_output=True)
        _remove_cgroups(self.cgroup_parent)
        if self.apt_archives.is_dir():
            _return_apt_cache(self.apt_archives)

    def __enter__(self) -> "Machine":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def _remove_cgroups(parent: str) -> None:
    """The (empty) cgroup folders the machine's own engine made, deepest first."""
    root = Path("/sys/fs/cgroup")
    for controller in root.iterdir() if root.is_dir() else ():
        top = controller / parent.strip("/")
        if not top.is_dir() or top.is_symlink():
            continue
        for folder in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            _rmdir(folder)
        _rmdir(top)
        _rmdir(top.parent)  # the shared parent, once no machine uses it


def _rmdir(path: Path) -> None:
    try:
        os.rmdir(path)
    except OSError:
        pass
