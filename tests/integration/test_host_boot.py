"""Hosts proven on a real boot: Debian 12 systemd machines play the EC2 instances of a sandbox.

damso deploys a sandbox environment (real terraform against its emulator, --no-wait, no
--converge-local): the emulated instances run nothing and only hold their user-data. Each
machine gets its instance's user-data from the emulator and runs it once, as root, at first
boot (tests/support/machine.py's stand-in for cloud-init); a fake IMDSv2 server plays that
instance (its id, addresses and role credentials). From then on the test does nothing on the
machine: its own reconcile service must bring the containers up, healthy, and report to S3, and
notice a new release within a few of its pointer checks (every 4 s).

The plain OS machine plays the livekit instance through the main scenario (first boot, a new
release, a tampered one, a restart); the other variants boot one after the other, playing the
web and agent instances, from the moment the main scenario only waits for its host. Each
machine has a fake metadata service of its own (see tests/support/imds.py). Boot-to-healthy
times (from the machine's start to the time in its report) are printed (pytest -s) and kept in
~/.cache/damso-tests/host-boot-times.json.
"""

from __future__ import annotations

import base64
import itertools
import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone

import pytest

from tests.integration.conftest import APP_FILES, Project, make_repo, write_config
from tests.support.daemons import CACHE
from tests.support.imds import FakeImds, Instance
from tests.support.machine import Machine, ensure_images
from tests.support.net import free_port

pytestmark = pytest.mark.integration

ENV = "sandbox"
AMI = "ami-1e749f67"  # one of moto's images
CHECK_EVERY = 4  # reconcile.py --watch: seconds between the pointer checks of damso-reconcile.service
# How long a host may take from a moved pointer to its report, on a loaded machine (a busy CI runner:
# compose pulls and starts inside the machine's own engine). That the run came from the pointer
# check, not from the once-a-minute run, is read from the unit's journal, not from this time.
MOVED_TO_REPORT = CHECK_EVERY + 150
NO_NVIDIA = "This host has no NVIDIA container runtime"
IMDS_HOST = "imds.damso.test"  # host_imds_url's host; each machine resolves it to its own fake metadata service
# One app for every role: busybox httpd behind tini (so SIGTERM stops it at once). The livekit
# role also serves its filled livekit.yaml; the agent role asks for an NVIDIA GPU, like the real one.
COMPOSE = """\
services:
  app:
    image: {{ images["api"] }}
    init: true
    stop_grace_period: {{ stop_grace_period }}
    command: ["/bin/busybox", "sh", "-c", "mkdir -p /www && echo \\"$$APP_MESSAGE\\" > /www/index.html && exec /bin/busybox httpd -f -p 8080 -h /www"]
    env_file: [{{ env_file }}, {{ secrets_file }}]
    healthcheck:
      test: ["CMD", "/bin/busybox", "wget", "-qO", "/dev/null", "http://127.0.0.1:8080/"]
      interval: 2s
      timeout: 2s
      retries: 3
{%- if role == "livekit" %}
    volumes: ["./livekit.yaml:/www/livekit.yaml:ro"]
{%- endif %}
{%- if role == "agent" %}
    deploy:
      resources:
        reservations:
          devices: [{driver: nvidia, count: all, capabilities: [gpu]}]
{%- endif %}
"""


def env_toml(imds_url: str, message: str) -> str:
    roles = "".join(
        f"""
[environments.{ENV}.roles.{role}]
instance_type = "t3.small"
ami = "{AMI}"
services = ["api"]
compose_template = "compose/app.yml.j2"
health_timeout = 60
stop_grace_period = "20s"
secrets = ["REGISTRY_USERNAME", "REGISTRY_PASSWORD"]
env = {{ APP_MESSAGE = "{message} from {role}" }}
"""
        for role in ("livekit", "web", "agent")
    )
    return (
        f'\n[environments.{ENV}]\nsandbox = true\nregion = "ap-northeast-2"\ndomain = "sandbox.test"\n'
        f'host_imds_url = "{imds_url}"\n[environments.{ENV}.build_args]\nPUBLIC_URL = "https://sandbox.test"\n{roles}'
    )


@dataclass
class Host:
    """A machine playing one instance, and its metadata service."""

    role: str
    machine: Machine
    imds: FakeImds


class Sandbox:
    """The deployed environment, seen the way a host and an operator see it."""

    def __init__(self, project: Project, imds_port: int, docker_client, images) -> None:
        import boto3

        self.project, self.imds_port, self.docker, self.images = project, imds_port, docker_client, images
        port = json.loads((project.root / ".damso" / "sandbox" / "server.json").read_text())["port"]
        session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="ap-northeast-2")
        self.s3, self.ec2 = (session.client(s, endpoint_url=f"http://127.0.0.1:{port}") for s in ("s3", "ec2"))
        (self.bucket,) = [b["Name"] for b in self.s3.list_buckets()["Buckets"] if f"-{ENV}-artifacts-" in b["Name"]]
        self.instances = {}
        for reservation in self.ec2.describe_instances()["Reservations"]:
            for i in reservation["Instances"]:
                tags = {t["Key"]: t["Value"] for t in i.get("Tags", [])}
                if i["State"]["Name"] != "terminated" and tags.get("Role"):
                    self.instances[tags["Role"]] = i
        self.hosts: list[Host] = []
        self.addresses = itertools.count(2)  # 127.0.0.N, one for each machine's metadata service
        self.times: dict[str, float] = {}

    def configure(self, message: str) -> None:
        toml = env_toml(f"http://{IMDS_HOST}:{self.imds_port}", message)
        write_config(self.project.root, self.project.registry.host, self.project.repos, toml)

    def deploy(self, *args: str) -> dict:
        result = self.project.damso("deploy", ENV, "--yes", "--no-wait", "--json", *args)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def get(self, key: str) -> bytes | None:
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return None

    def pointers(self, role: str) -> dict[str, dict]:
        """The release pointers a host of the role reads, most specific first: its instance's and its
        role's (where a rollout wrote them), the environment's."""
        instance = self.instances[role]["InstanceId"]
        keys = (f"{ENV}/instances/{instance}/current", f"{ENV}/roles/{role}/current", f"{ENV}/current")
        return {key: json.loads(body) for key in keys if (body := self.get(key))}

    def desired(self, role: str) -> str:
        """The release a host of the role should run."""
        return next(p["release"] for p in self.pointers(role).values() if p.get("release"))

    def report(self, role: str) -> dict | None:
        body = self.get(f"{ENV}/reports/{self.instances[role]['InstanceId']}.json")
        return json.loads(body) if body else None

    def user_data(self, role: str) -> str:
        attr = self.ec2.describe_instance_attribute(InstanceId=self.instances[role]["InstanceId"], Attribute="userData")
        return base64.b64decode(attr["UserData"]["Value"]).decode()

    def instance(self, role: str, public_ipv4: str | None = None) -> Instance:
        i = self.instances[role]
        return Instance(i["InstanceId"], i["PrivateIpAddress"], public_ipv4 or i.get("PublicIpAddress"))

    def boot(self, role: str, image: str, name: str, **kw) -> Host:
        """A machine playing the role's instance, with a metadata service of its own."""
        imds = FakeImds(self.instance(role), address=f"127.0.0.{next(self.addresses)}", port=self.imds_port).start()
        machine = Machine(self.docker, image, self.user_data(role), name, extra_hosts={IMDS_HOST: imds.address}, **kw)
        host = Host(role, machine, imds)
        self.hosts.append(host)
        machine.boot()
        return host

    def remove(self, host: Host) -> None:
        host.machine.remove()
        host.imds.stop()
        self.hosts.remove(host)

    def wait_report(self, host: Host, what: str, check, timeout: float) -> dict:
        """The host's report once `check` holds, written since the machine (re)started."""
        deadline = time.monotonic() + timeout
        report = None
        while time.monotonic() < deadline:
            report = self.report(host.role)
            if report and report["time"] >= host.machine.started and check(report):
                return report
            time.sleep(1)
        pytest.fail(f"{host.machine.name} ({host.role}): no report {what} within {timeout:.0f} s; "
                    f"last report: {json.dumps(report)[:1500]}\n{host.machine.diagnose()}")  # fmt: skip

    def wait_healthy(self, host: Host, timeout: float = 300) -> dict:
        release = self.desired(host.role)
        check = lambda r: r["status"] == "healthy" and r["running"] == release  # noqa: E731
        return self.wait_report(host, f"healthy on {release}", check, timeout)

    def record(self, name: str, seconds: float) -> None:
        self.times[name] = round(seconds, 1)
        print(f"\n[host boot] {name}: {seconds:.1f} s")

    def record_boot(self, name: str, host: Host, report: dict) -> None:
        self.record(name, boot_seconds(host.machine, report))

    def status(self, *args: str):
        return self.project.damso("status", ENV, *args)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory, registry, dockerd, docker_client, busybox_image, git_root):
    started = time.monotonic()
    base = tmp_path_factory.mktemp("hostboot")
    repos = {name: make_repo(git_root, f"{name}-{base.name}", commits=1, files=APP_FILES | {"content.txt": "x\n"})
             for name in ("app", "site", "broken")}  # fmt: skip
    root = base / "project"
    (root / "templates" / "compose").mkdir(parents=True)
    (root / "templates" / "compose" / "app.yml.j2").write_text(COMPOSE)
    env = {
        "DOCKER_HOST": dockerd.host,
        "GHCR_USERNAME": registry.username,
        "GHCR_TOKEN": registry.password,
        "REGISTRY_USERNAME": registry.username,
        "REGISTRY_PASSWORD": registry.password,
        "DAMSO_CACHE_DIR": str(base / "cache"),
        "DAMSO_CONFIG": None,
        "DAMSO_STATE_DIR": None,
        "CI": "true",
    }
    project = Project(root, env, repos, registry)
    imds_port = free_port()
    write_config(root, registry.host, repos, env_toml(f"http://{IMDS_HOST}:{imds_port}", "one"))
    try:
        with ThreadPoolExecutor(1) as pool:  # the machine images (when missing) build while damso builds and deploys
            images_built = pool.submit(machine_images, dockerd.host)
            built = project.damso("build", "--ref", "main", "api")
            assert built.exit_code == 0, built.output
            t = time.monotonic()
            first = project.damso("deploy", ENV, "--yes", "--no-wait", "--json")
            assert first.exit_code == 0, first.output
            deployed = time.monotonic() - t
            images, images_took = images_built.result()
    except BaseException:
        project.damso("sandbox", "stop")  # the emulator the deploy started, also when the setup fails
        raise
    sb = Sandbox(project, imds_port, docker_client, images)
    sb.record("machine images (built or reused, alongside the deploy)", images_took)
    sb.record("deploy (terraform apply, release; --no-wait)", deployed)
    try:
        yield sb
    finally:
        for host in list(sb.hosts):
            sb.remove(host)
        project.damso("sandbox", "stop")
        sb.record("host boot tests in all", time.monotonic() - started)
        path = CACHE / "host-boot-times.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"recorded": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                    "seconds": sb.times}, indent=2))  # fmt: skip
        print(f"\n[host boot] times: {json.dumps(sb.times)} (also in {path})")


@pytest.fixture(scope="module")
def livekit_host(sandbox):
    """The plain OS machine (bootstrap installs everything) playing the livekit instance, alone."""
    host = sandbox.boot("livekit", sandbox.images.base, "plain")
    report = sandbox.wait_healthy(host)
    sandbox.record_boot("plain OS: boot to healthy", host, report)
    return host, report


@dataclass
class Variant:
    """What a variant machine showed, gathered before it was removed."""

    host: Host
    report: dict
    seconds: float  # from the machine's start to its report
    user_data_exit: str
    log: str  # /var/log/cloud-init-output.log
    page: str  # what its app serves ("" for none)


def boot_variant(sandbox: Sandbox, name: str, role: str, healthy: bool, **kw) -> Variant:
    host = sandbox.boot(role, sandbox.images.docker, name, **kw)
    try:
        if healthy:
            report = sandbox.wait_healthy(host)
        else:
            release = sandbox.desired(role)
            report = sandbox.wait_report(host, f"on {release}", lambda r: r["release"] == release, 300)
        m = host.machine
        return Variant(host, report, boot_seconds(m, report), m.user_data_exit(),
                       m.read("/var/log/cloud-init-output.log") or "", served(m) if healthy else "")  # fmt: skip
    finally:
        sandbox.remove(host)


@pytest.fixture(scope="module")
def variants(sandbox):
    """The other machines, one after the other, each playing an instance the main scenario does not
    touch. They start while the main scenario waits for its host (idle time on this machine)."""
    pool = ThreadPoolExecutor(1)
    futures = {
        "apt-locked": pool.submit(boot_variant, sandbox, "apt-locked", "web", True, apt_lock_seconds=30),
        "docker-preinstalled": pool.submit(boot_variant, sandbox, "docker-preinstalled", "web", True),
        "no-nvidia": pool.submit(boot_variant, sandbox, "no-nvidia", "agent", False),
    }
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)


def variant(variants: dict, name: str) -> Variant:
    try:
        return variants[name].result(timeout=600)
    except BaseException as exc:  # noqa: BLE001 - pytest.fail in the thread raises an OutcomeException
        pytest.fail(f"{name}: {exc}")


def boot_seconds(machine: Machine, report: dict) -> float:
    """From the machine's start to the time its report was written."""
    return (datetime.fromisoformat(report["time"]) - datetime.fromisoformat(machine.started)).total_seconds()


def machine_images(docker_host: str):
    """The machine images (built when missing, in a thread of their own) and how long that took."""
    import docker

    started = time.monotonic()
    client = docker.DockerClient(base_url=docker_host, timeout=600)
    try:
        return ensure_images(client), time.monotonic() - started
    finally:
        client.close()


def container_sh(machine: Machine, script: str) -> str:
    """A shell command in the role's app container, on the machine's own engine."""
    code, out = machine.sh(f"docker exec $(docker ps -q --filter label=com.docker.compose.service=app) /bin/busybox sh -c '{script}'")
    assert code == 0, out
    return out


def running_containers(machine: Machine) -> dict[str, str]:
    """The machine engine's running containers: id → when it started. Read when no reconcile run is
    under way (one that is may be replacing them)."""
    wait_idle(machine)
    code, out = machine.sh("docker ps -q --no-trunc | xargs -r docker inspect -f '{{.Id}} {{.State.StartedAt}}'")
    assert code == 0, out
    return dict(line.split() for line in out.splitlines())


def wait_idle(machine: Machine, timeout: float = 120) -> None:
    """Until no reconcile run is under way: the service's last run has ended (its journal)."""
    deadline = time.monotonic() + timeout
    while True:
        journal = machine.sh("journalctl -u damso-reconcile -b --no-pager -o cat")[1]
        runs = [line for line in journal.splitlines() if "damso-reconcile: reconciling (" in line or "damso-reconcile: run ended" in line]
        if not runs or "run ended" in runs[-1]:
            return
        assert time.monotonic() < deadline, f"damso-reconcile.service still in a run after {timeout:.0f} s:\n{journal[-3000:]}"
        time.sleep(1)


def served(machine: Machine) -> str:
    return container_sh(machine, "/bin/busybox wget -qO- http://127.0.0.1:8080/").strip()


def test_plain_os_boots_to_healthy_through_its_own_service(sandbox, livekit_host):
    host, report = livekit_host
    machine = host.machine
    current = sandbox.desired("livekit")
    assert report["release"] == current and [c["name"] for c in report["containers"]] == ["app"]
    assert machine.user_data_exit() == "0"  # the bootstrap ran once, and cleanly
    code, out = machine.sh("systemctl is-enabled damso-reconcile.service; systemctl is-active damso-reconcile.service")
    assert out.split() == ["enabled", "active"], out
    assert machine.sh("test -e /etc/systemd/system/damso-reconcile.timer")[0] != 0  # the long-running unit only
    log = machine.read("/var/log/cloud-init-output.log")
    assert all(f"installing {p}" in log for p in ("python3-boto3", "docker.io", "docker-compose")), log
    # The unit found its identity, address and credentials through IMDSv2; a GET without a token is refused.
    assert "/latest/meta-data/instance-id" in host.imds.served
    assert any(p.startswith("/latest/meta-data/iam/security-credentials/") for p in host.imds.served)
    with pytest.raises(urllib.error.HTTPError, match="401"):
        urllib.request.urlopen(f"{host.imds.url}/latest/meta-data/instance-id", timeout=5)
    instance = sandbox.instances["livekit"]
    node_ip = instance.get("PublicIpAddress") or instance["PrivateIpAddress"]  # as IMDS says: public-ipv4, else local-ipv4
    assert f'node_ip: "{node_ip}"' in container_sh(machine, "cat /www/livekit.yaml")
    assert served(machine) == "one from livekit"

    result = sandbox.status("--json")
    data = json.loads(result.stdout)
    assert "instances" in data, result.output
    entry = next(i for i in data["instances"] if i["role"] == "livekit")
    assert entry["health"] == "healthy" and entry["release_running"] == entry["release_current"] == current, entry

    # Safe to run twice: nothing is installed again, the unit keeps running the release.
    code, out = machine.sh("/var/lib/cloud/user-data 2>&1", timeout=120)
    assert code == 0 and "installing" not in out, out


def test_a_new_release_is_picked_up_at_the_next_pointer_check(sandbox, livekit_host):
    host, _ = livekit_host
    sandbox.configure("two")
    release = sandbox.deploy("--only", "livekit")["release"]
    made_current = time.monotonic()
    assert sandbox.desired("livekit") == release
    sandbox.wait_report(host, f"healthy on {release}", lambda r: r["release"] == release and r["status"] == "healthy",
                        MOVED_TO_REPORT)  # fmt: skip
    sandbox.record("new release: made current to healthy", time.monotonic() - made_current)
    assert served(host.machine) == "two from livekit"
    # The run came from a moved pointer (not the once-a-minute run), and the checks between cost 304s.
    journal = host.machine.sh("journalctl -u damso-reconcile -b --no-pager -o cat")[1]
    assert any(f"{ENV}/" in line and "current changed)" in line for line in journal.splitlines()
               if "reconciling (" in line), journal[-3000:]  # fmt: skip


def test_the_script_damso_exec_sends_runs_on_the_host_as_the_ssm_agent_would(sandbox, livekit_host):
    """damso exec's AWS-RunShellScript commands (the emulator runs none): written to a file and run
    by sh as root, as the agent does, on the booted host: in the role's container through the
    host's own compose (its host.env, its applied release), and on the host itself."""
    from damso_ops.operate import remote

    host, _ = livekit_host
    wait_idle(host.machine)
    page = served(host.machine)
    for argv, service, expected in (
        (["/bin/busybox", "sh", "-c", "cat /www/index.html; exit 3"], "app", (3, f"{page}\n")),
        (["sh", "-c", "pwd; id -u; exit 4"], None, (4, "/\n0\n")),
    ):
        script = remote.host_script(argv, service)
        code, out = host.machine.sh(f"mkdir -p /tmp/ssm && cat > /tmp/ssm/_script.sh <<'EOF_SSM'\n{script}EOF_SSM\n"
                                    "sh /tmp/ssm/_script.sh 2>/tmp/ssm/stderr")  # fmt: skip
        assert (code, out) == expected, f"{script}\nstderr: {host.machine.read('/tmp/ssm/stderr')}"


def test_a_tampered_release_is_refused_on_the_host_and_old_containers_keep_running(sandbox, livekit_host, variants):
    host, _ = livekit_host  # (the variants boot meanwhile)
    machine = host.machine
    good = sandbox.desired("livekit")
    before = running_containers(machine)
    assert len(before) == 1, f"{before}\n{machine.diagnose()}"  # the app, as the last report says
    manifest = json.loads(sandbox.get(f"{ENV}/releases/{good}/manifest.json"))
    bad = f"tampered-{int(time.time())}"
    for role, files in manifest["roles"].items():
        for name in files:
            body = sandbox.get(f"{ENV}/releases/{good}/{role}/{name}")
            if (role, name) == ("livekit", "compose.yml"):
                body += b"\n# changed after its checksum was recorded\n"
            sandbox.s3.put_object(Bucket=sandbox.bucket, Key=f"{ENV}/releases/{bad}/{role}/{name}", Body=body)
    sandbox.s3.put_object(Bucket=sandbox.bucket, Key=f"{ENV}/releases/{bad}/manifest.json", Body=json.dumps(manifest).encode())
    pointers = dict(list(sandbox.pointers("livekit").items())[:1])  # the one the host reads
    for key, pointer in pointers.items():
        sandbox.s3.put_object(Bucket=sandbox.bucket, Key=key, Body=json.dumps({**pointer, "release": bad}).encode())
    try:
        report = sandbox.wait_report(host, f"on {bad}", lambda r: r["release"] == bad, MOVED_TO_REPORT)
        assert report["status"] == "rejected" and report["running"] == good, report
        assert "checksum mismatch for livekit/compose.yml" in report["error"]
        # The same containers (ids), still running since the same start (not restarted, not recreated).
        assert running_containers(machine) == before, machine.diagnose()
        assert served(machine) == "two from livekit"
    finally:
        for key, pointer in pointers.items():
            sandbox.s3.put_object(Bucket=sandbox.bucket, Key=key, Body=json.dumps(pointer).encode())


def test_a_restarted_machine_comes_back_healthy_by_itself_with_its_new_address(sandbox, livekit_host):
    """Stopped and started again (an instance without an Elastic IP gets a new public address):
    the service's run at start fills livekit.yaml with the new NODE_IP and restarts what mounts it."""
    host, _ = livekit_host
    machine = host.machine
    machine.stop()
    host.imds.play(sandbox.instance("livekit", public_ipv4="198.51.100.77"))
    machine.start()
    report = sandbox.wait_healthy(host, timeout=120)
    sandbox.record_boot("restart: start to healthy", host, report)
    assert 'node_ip: "198.51.100.77"' in container_sh(machine, "cat /www/livekit.yaml")
    journal = machine.sh("journalctl -u damso-reconcile -b --no-pager")[1]
    assert "livekit.yaml changed; restarting 1 container(s)" in journal, journal


def test_docker_preinstalled_without_boto3_or_compose(sandbox, variants):
    """The Deep Learning AMI case: docker is there, boto3 and compose are not; each is installed on its own."""
    v = variant(variants, "docker-preinstalled")
    sandbox.record("docker preinstalled: boot to healthy", v.seconds)
    assert v.user_data_exit == "0"
    assert "installing python3-boto3" in v.log and "installing docker-compose" in v.log, v.log
    assert "installing docker.io" not in v.log, v.log
    assert v.page == "one from web"


def test_apt_locks_held_for_the_first_30_s_of_boot(sandbox, variants):
    """Like unattended-upgrades at an Ubuntu first boot: the bootstrap waits, then installs."""
    v = variant(variants, "apt-locked")
    sandbox.record("apt locks held 30 s: boot to healthy", v.seconds)
    assert v.seconds > 30 and v.user_data_exit == "0"
    assert "damso-bootstrap: apt-get update failed (try 1)" in v.log and "installing python3-boto3" in v.log, v.log
    assert v.page == "one from web"


def test_a_gpu_role_on_a_machine_without_the_nvidia_runtime_says_so(sandbox, variants):
    v = variant(variants, "no-nvidia")
    report = v.report
    sandbox.record("GPU role without NVIDIA runtime: boot to report", v.seconds)
    assert report["status"] == "failed" and report["error"].startswith(NO_NVIDIA), report
    assert "role agent" in report["error"] and "Deep Learning OSS Nvidia Driver AMI" in report["error"]
    assert report["error"].count(". ") == 0 and report["error"].endswith(".")  # one sentence
    result = sandbox.status()
    assert result.exit_code == 1
    assert f"! failed (release {report['release']}): {NO_NVIDIA}" in result.stdout, result.stdout
