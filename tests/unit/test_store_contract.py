"""Both sides of the S3 layout agree: damso's release store and the host's reconcile unit
(a single stdlib+boto3 file that spells its keys itself)."""

from __future__ import annotations

import importlib.util
import os
import json

import pytest
from moto import mock_aws

from damso_ops import paths, secrets
from damso_ops.deploy import releases
from damso_ops.deploy.store import Layout, ReleaseStore

BUCKET = "damso-contract-artifacts"


def _reconcile():
    spec = importlib.util.spec_from_file_location("reconcile", paths.data_dir("templates") / "host" / "reconcile.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def aws(monkeypatch, tmp_path):
    for name, value in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_REGION": "us-east-1",
                        "AWS_DEFAULT_REGION": "us-east-1", "DAMSO_ENV": "qa", "DAMSO_ROLE": "api",
                        "DAMSO_BUCKET": BUCKET, "DAMSO_INSTANCE_ID": "i-0contract", "DAMSO_WORKDIR": str(tmp_path)}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        import boto3

        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        yield s3, boto3.client("ssm", region_name="us-east-1")


def test_both_sides_spell_the_same_keys():
    host, keys = _reconcile(), Layout("qa")
    assert host.current_key("qa") == keys.current
    assert host.release_key("qa", "r1", "manifest.json") == keys.manifest("r1")
    assert host.release_key("qa", "r1", "api/compose.yml") == keys.file("r1", "api", "compose.yml")
    assert host.report_key("qa", "i-1") == keys.report("i-1")
    assert host.secrets_path("qa", "api") == secrets.prefix("qa", "api")


def test_a_release_the_store_writes_is_what_the_host_fetches(aws):
    s3, ssm = aws
    store = ReleaseStore(s3, BUCKET, "qa")
    release = releases.make("qa", {"api": {"compose.yml": "services: {}\n", "role.env": "A=1\n"}}, {}, "reg", None,
                            {"api": {"health_timeout": 42}})  # fmt: skip
    stats = releases.upload(store, release)
    store.make_current(release.id, release.content)
    secrets.put(ssm, "qa", "api", "API_TOKEN", "contract-secret-value")
    assert stats.put == 3 and releases.upload(store, release).put == 0

    host_module = _reconcile()
    host = host_module.Host()
    assert json.loads(host.get(host_module.current_key("qa")))["release"] == release.id
    folder, manifest = host.fetch(release.id)
    assert manifest["release"] == release.id and host.health_timeout == 42
    with open(f"{folder}/compose.yml") as fh:
        assert fh.read() == "services: {}\n"
    with open(f"{folder}/secrets.env") as fh:
        assert fh.read() == "API_TOKEN=contract-secret-value\n"


def test_a_report_the_host_writes_is_what_the_store_reads(aws):
    s3, _ = aws
    _reconcile().Host().report({"release": "r9", "running": "r9", "status": "healthy", "containers": []})
    (report,) = ReleaseStore(s3, BUCKET, "qa").reports().items()
    assert report[0] == "i-0contract"
    assert report[1]["status"] == "healthy" and report[1]["role"] == "api" and report[1]["env"] == "qa"


def test_a_tampered_file_is_refused_by_the_host(aws):
    s3, _ = aws
    store = ReleaseStore(s3, BUCKET, "qa")
    release = releases.make("qa", {"api": {"compose.yml": "services: {}\n"}}, {}, "reg", None)
    releases.upload(store, release)
    store.write(Layout("qa").file(release.id, "api", "compose.yml"), b"services: {evil: {}}\n")
    host_module = _reconcile()
    with pytest.raises(host_module.Rejected, match="checksum mismatch for api/compose.yml"):
        host_module.Host().fetch(release.id)


def test_the_host_reads_the_most_specific_pointer_the_store_writes(aws):
    s3, _ = aws
    store = ReleaseStore(s3, BUCKET, "qa")
    host_module = _reconcile()
    assert host_module.pointer_keys("qa", "api", "i-1") == [Layout("qa").instance_pointer("i-1"),
                                                            Layout("qa").role_pointer("api"), Layout("qa").current]
    host = host_module.Host()
    assert host.desired() is None
    store.make_current("r-env", "c")
    assert host.desired() == store.desired("api", "i-0contract") == "r-env"
    store.set_role_release("api", None)  # held: a later wave of a first rollout
    assert host.desired() is None and store.desired("api", "i-0contract") is None
    store.set_role_release("api", "r-role")
    assert host.desired() == store.desired("api", "i-0contract") == "r-role"
    store.set_instance_release("i-0contract", "r-instance")
    assert host.desired() == store.desired("api", "i-0contract") == "r-instance"
    store.clear_instance_release("i-0contract")
    assert host.desired() == "r-role"


def test_registry_credentials_reach_only_the_hosts_login(aws):
    """secrets.env is the containers' env_file: the registry credentials stay out of it; an X.in
    file that names one by name still gets it, and docker login uses them."""
    s3, ssm = aws
    store = ReleaseStore(s3, BUCKET, "qa")
    release = releases.make("qa", {"api": {"compose.yml": "services: {}\n", "auth.conf.in": "user=${REGISTRY_USERNAME}\n"}},
                            {}, "reg", None)  # fmt: skip
    releases.upload(store, release)
    for name, value in {"API_TOKEN": "app-value", "REGISTRY_USERNAME": "puller", "REGISTRY_PASSWORD": "registry-pw"}.items():
        secrets.put(ssm, "qa", "api", name, value)
    host = _reconcile().Host()
    folder, _ = host.fetch(release.id)
    with open(f"{folder}/secrets.env") as fh:
        assert fh.read() == "API_TOKEN=app-value\n"
    with open(f"{folder}/auth.conf") as fh:
        assert fh.read() == "user=puller\n"
    assert host.values["REGISTRY_PASSWORD"] == "registry-pw"  # what login() hands to docker login


def test_old_releases_keep_no_secrets_and_few_folders(aws, tmp_path):
    module = _reconcile()
    root = tmp_path / "releases"
    for n in range(6):
        folder = root / f"r{n}"
        folder.mkdir(parents=True)
        for name, text in {"secrets.env": f"API_TOKEN=old-{n}\n", "conf.in": "${API_TOKEN}", "conf": f"old-{n}",
                           "compose.yml": "services: {}\n"}.items():  # fmt: skip
            (folder / name).write_text(text)
        os.utime(folder, (1000 + n, 1000 + n))
    (root / "r9.partial").mkdir()
    (tmp_path / "applied").write_text("r1")  # a rollback: the applied release is not the newest
    module.Host().prune(str(tmp_path / "applied"))
    assert sorted(p.name for p in root.iterdir()) == ["r1", "r4", "r5"]
    assert sorted(p.name for p in (root / "r1").iterdir()) == ["compose.yml", "conf", "conf.in", "secrets.env"]
    assert sorted(p.name for p in (root / "r5").iterdir()) == ["compose.yml", "conf.in"]
    left = "".join(p.read_text() for p in root.rglob("*") if p.is_file())
    assert "old-" in left and all(f"old-{n}" not in left for n in (0, 2, 3, 4, 5))


class FakeDocker:
    """The docker and compose commands the host runs, answered from a list of containers."""

    def __init__(self, states: dict[str, str]):
        self.states, self.calls = states, []

    def __call__(self, argv, **kw):
        import subprocess

        self.calls.append(list(argv))
        out = ""
        if argv[:2] == ["docker", "ps"]:
            out = "\n".join(self.states)
        elif argv[:2] == ["docker", "inspect"]:
            out = json.dumps([{"Id": i, "Name": f"/{i}", "Image": "sha256:1", "State": {"Status": s}, "Mounts": [],
                               "Config": {"Labels": {}, "Image": "app"}} for i, s in self.states.items()])  # fmt: skip
        elif "up" in argv:
            self.states = dict.fromkeys(self.states, "running")
        return subprocess.CompletedProcess(argv, 0, out, "")

    def changes(self) -> list[list[str]]:
        """Every call that may stop, start or replace a container."""
        return [c for c in self.calls if c[:2] not in (["docker", "ps"], ["docker", "inspect"])]


@pytest.mark.parametrize("states", [{"app1": "running"}, {"app1": "exited"}])
@pytest.mark.parametrize("current", ["tampered", "applied"])
def test_a_kept_release_touches_no_running_container_and_starts_the_stopped_ones(aws, tmp_path, monkeypatch, states, current):
    """After an engine restart (or a reboot) a container without a restart policy is stopped. A run that keeps
    the applied release, because the current one is tampered with or is the applied one, starts it (compose up
    --no-recreate: nothing that exists is replaced); a running container gets no command at all."""
    s3, _ = aws
    store = ReleaseStore(s3, BUCKET, "qa")
    good = releases.make("qa", {"api": {"compose.yml": "services: {}\n"}}, {}, "reg", None)
    bad = releases.make("qa", {"api": {"compose.yml": "services: {app: {}}\n"}}, {}, "reg", None)
    for release in (good, bad):
        releases.upload(store, release)
    store.write(Layout("qa").file(bad.id, "api", "compose.yml"), b"services: {evil: {}}\n")
    store.make_current(*((bad.id, bad.content) if current == "tampered" else (good.id, good.content)))
    (tmp_path / "releases" / good.id).mkdir(parents=True)
    (tmp_path / "applied").write_text(good.id)
    host_module = _reconcile()
    docker = FakeDocker(dict(states))
    monkeypatch.setattr(host_module, "sh", docker)
    monkeypatch.setattr(host_module.Host, "describe", lambda self, containers: [])  # no docker logs
    monkeypatch.setenv("DAMSO_COMPOSE", "docker compose")
    host_module.Host().run()
    report = json.loads(store.read(Layout("qa").report("i-0contract")))
    assert report["running"] == good.id
    if current == "tampered":
        assert report["status"] == "rejected" and report["error"].startswith("checksum mismatch for api/compose.yml")
    if states["app1"] == "running":
        assert docker.changes() == []
    else:
        (up,) = docker.changes()
        assert up[-3:] == ["up", "-d", "--no-recreate"] and f"releases/{good.id}/compose.yml" in " ".join(up)
        assert docker.states == {"app1": "running"}
    assert "seconds" not in report  # only a release the run applied has step timings


def test_a_new_releases_report_carries_the_seconds_of_pull_start_and_health(aws, tmp_path, monkeypatch):
    """A run that applies a release reports how long compose pull, compose up and the wait for
    health took (the rollout bench sums them, bench/rollout_bench.py), rounded to 0.1 s."""
    import types

    s3, _ = aws
    store = ReleaseStore(s3, BUCKET, "qa")
    release = releases.make("qa", {"api": {"compose.yml": "services: {app: {}}\n"}}, {}, "reg", None)
    releases.upload(store, release)
    store.make_current(release.id, release.content)
    host_module = _reconcile()
    clock = [100.0]
    docker = FakeDocker({"app1": "created"})

    def timed(argv, **kw):  # pull takes 3.04 s, up 1.5 s, each look at the containers 0.2 s
        clock[0] += 3.04 if "pull" in argv else 1.5 if "up" in argv else 0.2 if argv[:2] == ["docker", "inspect"] else 0
        return docker(argv, **kw)

    monkeypatch.setattr(host_module, "sh", timed)
    monkeypatch.setattr(host_module, "time", types.SimpleNamespace(monotonic=lambda: clock[0], sleep=lambda s: None))
    monkeypatch.setattr(host_module.Host, "describe", lambda self, containers: [])
    monkeypatch.setenv("DAMSO_COMPOSE", "docker compose")
    assert host_module.Host().run() == 0
    report = json.loads(store.read(Layout("qa").report("i-0contract")))
    assert report["status"] == "healthy" and report["running"] == release.id
    assert report["seconds"] == {"pull": 3.0, "start": 1.5, "health": 0.2}
