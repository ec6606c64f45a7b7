"""Release tasks and secret files: config checks, what a release carries, SSM's size limit, the
task record in the release store, and how a host tells a finished one-shot container from a crash."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from damso_ops import config, paths, secrets
from damso_ops.cli import app
from damso_ops.deploy import render
from damso_ops.deploy.store import Layout, ReleaseStore
from damso_ops.errors import ConfigError, UsageError
from tests.unit.test_config import MINIMAL

DIGEST = "127.0.0.1:5000/team/app@sha256:" + "a" * 64
BASE = MINIMAL + """
[environments.prod.roles.api]
services = ["app"]
compose_template = "compose/app.yml.j2"
"""
COMPOSE = """services:
  app:
    image: {{ images["app"] }}
  sidecar:  # no mount
    image: {{ images["app"] }}
"""


def parse(extra: str):
    return config.parse(BASE + extra, Path("/x/damso.toml"))


def files_of(tmp_path, extra: str) -> dict[str, str]:
    (tmp_path / "templates" / "compose").mkdir(parents=True, exist_ok=True)
    (tmp_path / "templates" / "compose" / "app.yml.j2").write_text(COMPOSE)
    (tmp_path / "damso.toml").write_text(BASE + extra)
    cfg = config.load(tmp_path / "damso.toml")
    role = cfg.environments["prod"].roles["api"]
    outputs = {"shared": {"artifact_bucket": "b"}}
    return render.render_files(cfg, "prod", "api", role, {"app": DIGEST}, outputs, "b")


TASK = """
[[environments.prod.roles.api.tasks]]
name = "migrate"
service = "app"
command = ["npx", "prisma", "migrate", "deploy"]
"""
SECRET_FILE = """
[environments.prod.roles.api.secret_files.APNS_KEY_P8]
path = "/secrets/apns-key.p8"
services = ["app"]
uid = 1000
"""


def test_a_release_carries_its_tasks_with_pinned_images_and_its_secret_files_without_content(tmp_path):
    files = files_of(tmp_path, TASK + """
[[environments.prod.roles.api.tasks]]
name = "seed"
image = "postgres:16.4"
command = ["psql", "-f", "/init-db.sql"]
timeout = 120
""" + SECRET_FILE)
    tasks = json.loads(files[render.TASKS_FILE])
    assert tasks == [{"name": "migrate", "image": DIGEST, "command": ["npx", "prisma", "migrate", "deploy"], "timeout": 600},
                     {"name": "seed", "image": "postgres:16.4", "command": ["psql", "-f", "/init-db.sql"], "timeout": 120}]
    assert json.loads(files[render.SECRET_FILES_FILE]) == [
        {"name": "APNS_KEY_P8", "path": "/secrets/apns-key.p8", "services": ["app"], "uid": 1000}]


def test_a_role_without_them_gets_neither_file(tmp_path):
    assert set(files_of(tmp_path, "")) == {"compose.yml", "role.env"}


def test_a_secret_file_for_a_service_the_compose_file_lacks_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"environments\.prod\.roles\.api\.secret_files\.APNS_KEY_P8\.services names 'worker'"):
        files_of(tmp_path, SECRET_FILE.replace('services = ["app"]', 'services = ["worker"]'))


@pytest.mark.parametrize("extra, expected", [
    (TASK.replace('service = "app"', 'service = "web"'), r"environments\.prod\.roles\.api\.tasks\.0\.service: 'web' is not one of the role's services"),
    (TASK.replace('service = "app"', ""), r"give service .* or image, exactly one"),
    (TASK.replace('service = "app"', 'image = "postgres:latest"\nservice = "app"'), r"exactly one"),
    (TASK.replace('service = "app"', 'image = "postgres:latest"'), r"never latest"),
    (TASK.replace('command = ["npx", "prisma", "migrate", "deploy"]', "command = []"), r"tasks\.0\.command"),
    (TASK + TASK, r"environments\.prod\.roles\.api\.tasks: names task 'migrate' more than once"),
    (SECRET_FILE.replace("/secrets/apns-key.p8", "secrets/key"), r"secret_files\.APNS_KEY_P8\.path"),
    (SECRET_FILE.replace("/secrets/apns-key.p8", "/secrets/../etc/key"), r"secret_files\.APNS_KEY_P8\.path: .*\(no '\.\.'"),
    (SECRET_FILE.replace("/secrets/apns-key.p8", "/a:/b"), r"secret_files\.APNS_KEY_P8\.path"),
    (SECRET_FILE.replace('services = ["app"]', "services = []"), r"secret_files\.APNS_KEY_P8\.services"),
])  # fmt: skip
def test_bad_tasks_and_secret_files_name_the_key_path(extra, expected):
    with pytest.raises(ConfigError) as err:
        parse(extra)
    assert err.match(expected), err.value.message


def test_a_secret_file_over_ssms_limit_is_one_sentence(tmp_path):
    big = tmp_path / "big.p8"
    big.write_text("k" * (secrets.FILE_LIMIT + 1))
    with pytest.raises(UsageError) as err:
        secrets.file_value(big, "APNS_KEY_P8")
    message = err.value.message
    assert "4,097 bytes" in message and "4,096 bytes" in message and message.count(". ") == 0 and message.endswith(".")
    exact = tmp_path / "exact.p8"
    exact.write_text("k" * secrets.FILE_LIMIT)
    assert secrets.file_value(exact, "APNS_KEY_P8") == "k" * secrets.FILE_LIMIT
    (tmp_path / "bin").write_bytes(b"\xff\xfe")
    with pytest.raises(UsageError, match="not UTF-8 text"):
        secrets.file_value(tmp_path / "bin", "K")


def test_secrets_set_file_refuses_a_big_file_before_reaching_aws(tmp_path):
    (tmp_path / "damso.toml").write_text(BASE + SECRET_FILE)
    big = tmp_path / "big.p8"
    big.write_text("k" * 5000)
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}
    result = CliRunner().invoke(app, ["--config", str(tmp_path / "damso.toml"), "secrets", "set", "prod", "api",
                                      "APNS_KEY_P8", "--file", str(big)], env=env)  # fmt: skip
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "5,000 bytes, more than the 4,096 bytes an SSM SecureString parameter" in " ".join(result.output.split())
    result = CliRunner().invoke(app, ["--config", str(tmp_path / "damso.toml"), "secrets", "set", "prod", "api",
                                      "OTHER", "--file", str(big)], env=env)  # fmt: skip
    assert result.exit_code != 0 and "OTHER is not a secret file of role api" in " ".join(result.output.split())


def test_secret_files_live_one_level_below_the_secrets_a_host_puts_in_its_env_file():
    assert secrets.file_parameter("prod", "api", "APNS_KEY_P8") == "/damso/prod/api/files/APNS_KEY_P8"
    assert secrets.file_parameter("prod", "api", "APNS_KEY_P8").startswith(secrets.prefix("prod", "api"))


def _reconcile():
    spec = importlib.util.spec_from_file_location("reconcile", paths.data_dir("templates") / "host" / "reconcile.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_host_and_store_spell_the_task_record_the_same():
    assert _reconcile().task_key("qa", "r1", "api") == Layout("qa").task_run("r1", "api")


def test_a_done_task_is_never_assigned_again_and_a_failed_one_is(monkeypatch):
    from moto import mock_aws

    for name, value in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        import boto3

        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="damso-qa-artifacts")
        store = ReleaseStore(s3, "damso-qa-artifacts", "qa")
        assert store.assign_tasks("r1", "api", "i-1") and store.task_run("r1", "api") == {"state": "assigned", "instance": "i-1"}
        store.write(store.keys.task_run("r1", "api"), json.dumps({"state": "failed", "instance": "i-1"}).encode())
        assert store.assign_tasks("r1", "api", "i-2") and store.task_run("r1", "api")["instance"] == "i-2"
        store.write(store.keys.task_run("r1", "api"), json.dumps({"state": "done", "instance": "i-2"}).encode())
        assert not store.assign_tasks("r1", "api", "i-3") and store.task_run("r1", "api")["state"] == "done"


def _container(status: str, exit_code: int = 0, task: bool = False, health: str | None = None) -> dict:
    labels = {"com.docker.compose.service": "seed" if task else "api"}
    if task:
        labels["damso.task"] = "seed"
    state = {"Status": status, "ExitCode": exit_code, **({"Health": {"Status": health}} if health else {})}
    return {"Id": "x", "Name": "/c", "Image": "sha256:1", "State": state, "Config": {"Image": "app", "Labels": labels}}


@pytest.mark.parametrize("container, ok, failing", [
    (_container("exited", 0, task=True), True, False),  # a one-shot that finished: done
    (_container("exited", 2, task=True), False, True),  # a one-shot that failed
    (_container("running", task=True), False, False),   # still running: waited for
    (_container("exited", 0), False, True),             # a service that exited: a crash, whatever its code
    (_container("running", health="healthy"), True, False),
])  # fmt: skip
def test_a_host_tells_a_finished_task_from_a_crashed_service(monkeypatch, container, ok, failing):
    host_module = _reconcile()
    host = object.__new__(host_module.Host)
    host.health_timeout = 30
    monkeypatch.setattr(host, "containers", lambda: [container], raising=False)
    monkeypatch.setattr(host_module.time, "sleep", lambda s: (_ for _ in ()).throw(TimeoutError("would wait")))
    (record,) = host.health()
    assert record["ok"] is ok
    try:
        _, healthy = host.wait_healthy()
        decided = not healthy
    except TimeoutError:
        decided = None  # still waiting
    assert decided is (True if failing else (False if ok else None))


def test_a_secret_file_is_listed_fingerprinted_and_removed_apart_from_the_env_secrets(monkeypatch):
    from moto import mock_aws

    for name, value in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        import boto3

        ssm = boto3.client("ssm", region_name="us-east-1")
        secrets.put(ssm, "qa", "api", "API_TOKEN", "token-value-1")
        before = secrets.fingerprint(ssm, "qa", "api")
        secrets.put_file(ssm, "qa", "api", "APNS_KEY_P8", "-----BEGIN-----\nkey-line-0123456789\n-----END-----\n")
        assert secrets.names(ssm, "qa") == [("api", "API_TOKEN"), ("api", "files/APNS_KEY_P8")]
        assert secrets.file_names(ssm, "qa", "api") == ["APNS_KEY_P8"]
        assert secrets.fingerprint(ssm, "qa", "api") != before  # a new key makes the next deploy a new release
        # The host's env-file read (no recursion) never gets the file.
        direct = ssm.get_parameters_by_path(Path=secrets.prefix("qa", "api"), WithDecryption=True)["Parameters"]
        assert [p["Name"] for p in direct] == ["/damso/qa/api/API_TOKEN"]
        secrets.remove_file(ssm, "qa", "api", "APNS_KEY_P8")
        assert secrets.file_names(ssm, "qa", "api") == [] and secrets.fingerprint(ssm, "qa", "api") == before
        with pytest.raises(UsageError, match="Secret file APNS_KEY_P8 is not set for role api of qa"):
            secrets.remove_file(ssm, "qa", "api", "APNS_KEY_P8")
