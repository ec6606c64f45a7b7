"""Operate what is deployed: status, history, rollback, logs and find_deployed, against
in-process moto with releases written by the release store and hand-written host reports."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from damso_ops.deploy import lock, releases
from damso_ops.deploy.target import Target
from damso_ops.errors import DamsoError, UsageError
from damso_ops.operate import deployed, history, logs, rollback, status
from tests.support.moto_env import ARTIFACTS, STATE, put_report, put_state

T0 = datetime(2026, 3, 1, 9, 0, 0, tzinfo=timezone.utc)
API_IMAGE = "registry.test/team/api@sha256:" + "1" * 64
ROLES = """
[environments.prod.roles.api]
services = ["api"]
[environments.prod.roles.web]
"""


def compose(image: str) -> str:
    return f"services:\n  api:\n    image: {image}\n  worker:\n    image: '{image}'  # same image\n"


def publish(store, minutes: int, *, commit: str = "c1", image: str = API_IMAGE, files: dict | None = None,
            settings: dict | None = None, current: bool = True) -> str:  # fmt: skip
    """A release uploaded by the store (and made current); its id."""
    files = files or {"api": {"compose.yml": compose(image), "role.env": "A=1\n"}}
    images = {"api": {"image": image, "commit": commit, "ref": "v1", "repository": "app"}}
    release = releases.make("prod", files, images, "registry.test", f"b{minutes}", settings or {"api": {"health_timeout": 30}},
                            now=T0 + timedelta(minutes=minutes))  # fmt: skip
    releases.upload(store, release)
    if current:
        store.make_current(release.id, release.content)
    return release.id


def half_uploaded(store, minutes: int) -> str:
    """A release whose files are there but whose manifest is not (an interrupted upload)."""
    release_id = (T0 + timedelta(minutes=minutes)).strftime("%Y%m%dT%H%M%SZ") + "-0000000000"
    store.write(store.keys.file(release_id, "api", "compose.yml"), b"x", sha256="x")
    return release_id


def container(name: str, image: str = API_IMAGE, ok: bool = True, **extra) -> dict:
    return {"name": name, "image": image, "image_id": "sha256:local", "state": "running" if ok else "exited",
            "health": "healthy" if ok else "unhealthy", "ok": ok, **extra}  # fmt: skip


def report(store, instance: str, release: str, at: datetime = T0, **extra) -> None:
    put_report(store, instance, **{"release": release, "running": release, "status": "healthy", "time": at.isoformat(),
                                   "containers": [container("api"), container("worker")], **extra})  # fmt: skip


@pytest.fixture
def ec2(aws):
    return aws.client("ec2")


@pytest.fixture
def instance(ec2) -> str:
    return ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1, InstanceType="t3.small")["Instances"][0]["InstanceId"]


def where(hosts: dict[str, str], missing=()) -> deployed.Deployed:
    return deployed.Deployed("prod", STATE, ARTIFACTS, {r: [{"instance_id": i, "private_ip": "10.0.0.5", "public_ip": None}]
                                                        for r, i in hosts.items()}, tuple(missing))  # fmt: skip


# ---- status -------------------------------------------------------------------------


def test_status_of_a_healthy_instance_on_the_current_release(store, ec2, instance):
    current = publish(store, 0)
    report(store, instance, current)
    result = status.status(store, ec2, where({"api": instance}), now=T0 + timedelta(seconds=30))
    assert result.ok and result.problems == [] and result.current == current
    assert result.current_created == "2026-03-01T09:00:00+00:00"
    (entry,) = result.instances
    assert (entry["state"], entry["instance_type"], entry["health"]) == ("running", "t3.small", "healthy")
    assert (entry["release_running"], entry["release_current"], entry["report_age_seconds"]) == (current, current, 30)
    assert entry["containers"][0] == {
        "name": "api", "image": API_IMAGE, "digest": "sha256:" + "1" * 64, "service": "api", "commit": "c1",
        "ref": "v1", "repository": "app", "state": "running", "health": "healthy", "ok": True, "in_release": True,
        "diagnosis": None, "last_logs": [],
    }  # fmt: skip
    assert entry["diagnosis"] is None
    assert result.to_dict()["ok"] is True


def test_status_flags_an_instance_behind_the_current_release(store, ec2, instance):
    old = publish(store, 0)
    current = publish(store, 10, commit="c2", image=API_IMAGE.replace("1", "2"))
    report(store, instance, old)
    result = status.status(store, ec2, where({"api": instance}), now=T0)
    assert result.problems == [f"api ({instance}): runs {old}, behind current {current}",
                               f"api ({instance}): container api runs {API_IMAGE}, which is not in release {current}",
                               f"api ({instance}): container worker runs {API_IMAGE}, which is not in release {current}"]  # fmt: skip
    assert [c["service"] for c in result.instances[0]["containers"]] == [None, None]  # not an image of the current release


def test_status_judges_report_age_only_with_stale_after(store, ec2, instance):
    report(store, instance, publish(store, 0))
    late = T0 + timedelta(seconds=1000)
    stale = status.status(store, ec2, where({"api": instance}), now=late)
    assert stale.problems == [f"api ({instance}): last report is 1000 s old (more than 900 s): is its reconcile unit running?"]
    assert status.status(store, ec2, where({"api": instance}), now=late, stale_after=1200).ok
    unjudged = status.status(store, ec2, where({"api": instance}), now=late, stale_after=None)
    assert unjudged.ok and unjudged.instances[0]["report_age_seconds"] == 1000


def test_status_without_reports_instances_or_stacks(store, ec2, instance):
    publish(store, 0)
    result = status.status(store, ec2, where({"api": instance, "agent": "i-0gone"}, missing=["web"]), now=T0)
    assert result.problems == [
        "web: not deployed (no stack state)",
        "agent (i-0gone): instance is missing",
        "agent (i-0gone): no report from this instance yet",
        f"api ({instance}): no report from this instance yet",
    ]  # roles not deployed first, then the hosts by role name
    assert [(e["role"], e["state"], e.get("health")) for e in result.instances] == [
        ("web", "not deployed", None), ("agent", "missing", "no report"), ("api", "running", "no report")]  # fmt: skip


def test_status_flags_a_container_not_in_the_release_and_a_failing_one(store, ec2, instance):
    current = publish(store, 0)
    stray = "registry.test/team/debug@sha256:" + "9" * 64
    report(store, instance, current, status="unhealthy", error="worker exited",
           containers=[container("api"), container("worker", ok=False), container("debug", image=stray)])  # fmt: skip
    result = status.status(store, ec2, where({"api": instance}), now=T0)
    assert result.problems == [f"api ({instance}): {p}" for p in (
        f"unhealthy (release {current}): worker exited",
        "container worker: exited, health unhealthy",
        f"container debug runs {stray}, which is not in release {current}",
    )]  # fmt: skip
    debug = result.instances[0]["containers"][2]
    assert (debug["in_release"], debug["service"], debug["digest"]) == (False, None, "sha256:" + "9" * 64)


SICK_LOGS = ["booting", "loading model", "Killed"]


def sick(store, instance: str, release: str) -> None:
    """A report with a worker killed for memory and an api whose health check fails, as a host writes them."""
    worker = container("worker", ok=False, logs=SICK_LOGS, restarts=2, memory=2 * 1024**3, created="2026-03-01T08:55:00.000000001Z",
                       inspect_state={"Status": "exited", "ExitCode": 137, "OOMKilled": True, "Error": "",
                                      "StartedAt": "2026-03-01T08:59:50.1Z", "FinishedAt": "2026-03-01T09:00:00.123456789Z"})  # fmt: skip
    probes = [{"Start": f"2026-03-01T09:0{m}:00.5Z", "End": f"2026-03-01T09:0{m}:01.5Z", "ExitCode": 1,
               "Output": "curl: (7) Failed to connect to 127.0.0.1 port 8000\n"} for m in range(5)]  # fmt: skip
    api = container("api", ok=False, logs=[f"l{n}" for n in range(9)],
                    inspect_state={"Status": "running", "ExitCode": 0, "OOMKilled": False, "Error": "",
                                   "Health": {"Status": "unhealthy", "FailingStreak": 5, "Log": probes}})  # fmt: skip
    api.update(state="running")
    report(store, instance, release, status="unhealthy", containers=[api, worker])


def test_status_says_why_each_container_is_unhealthy_with_its_last_lines(store, ec2, instance):
    current = publish(store, 0)
    sick(store, instance, current)
    result = status.status(store, ec2, where({"api": instance}), now=T0)
    api, worker = result.instances[0]["containers"]
    assert (api["diagnosis"], api["last_logs"]) == (
        "health check failing for 4 min (5 probes in a row): curl: (7) Failed to connect to 127.0.0.1 port 8000",
        ["l4", "l5", "l6", "l7", "l8"])  # fmt: skip
    assert (worker["diagnosis"], worker["last_logs"]) == (
        "exited with code 137 (killed: out of memory, limit 2 GiB) 3 times in 5 min", SICK_LOGS)  # fmt: skip
    assert result.instances[0]["diagnosis"] is None  # the run itself did not fail


def test_status_says_why_a_hosts_run_failed(store, ec2, instance):
    current = publish(store, 0)
    report(store, instance, current, status="failed", running=None, containers=[],
           error="compose pull failed: Error response from daemon: manifest for registry.test/team/api:v9 not found: manifest unknown")  # fmt: skip
    result = status.status(store, ec2, where({"api": instance}), now=T0)
    assert result.instances[0]["diagnosis"] == "image pull failed: manifest unknown"


def status_cli(target, instance: str, *args):
    from typer.testing import CliRunner

    from damso_ops.cli import app

    s3 = target.aws.client("s3")
    target.ensure_state_bucket()
    put_state(s3, "shared", {"artifact_bucket": ARTIFACTS})
    put_state(s3, "api", {"instance_id": instance, "private_ip": "10.0.1.5"})
    put_state(s3, "web", {}, resources=False)
    return CliRunner().invoke(app, ["--config", str(target.cfg.path), "status", "prod", *args])


def test_status_cli_shows_each_diagnosis_and_last_lines_in_text_and_json(store, ec2, instance, target):
    sick(store, instance, publish(store, 0))
    result = status_cli(target, instance)
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    at = lines.index(next(line for line in lines if line.startswith("  worker: exited, health unhealthy")))
    assert lines[at + 1:at + 5] == ["    exited with code 137 (killed: out of memory, limit 2 GiB) 3 times in 5 min",
                                    "    | booting", "    | loading model", "    | Killed"]  # fmt: skip
    assert "    health check failing for 4 min (5 probes in a row): curl: (7) Failed to connect to 127.0.0.1 port 8000" in lines
    data = json.loads(status_cli(target, instance, "--json").stdout)
    (entry,) = [i for i in data["instances"] if i["instance_id"] == instance]
    assert [(c["name"], c["diagnosis"], c["last_logs"]) for c in entry["containers"]][1] == (
        "worker", "exited with code 137 (killed: out of memory, limit 2 GiB) 3 times in 5 min", SICK_LOGS)  # fmt: skip


def held_lock(pid: int, since: datetime, holder: str = "ci@here") -> dict:
    return {"env": "prod", "holder": holder, "pid": pid, "command": "deploy", "since": since.isoformat(timespec="seconds"),
            "token": "t0ken"}  # fmt: skip


def moving(store, release: str) -> None:
    store.set_rollout({"release": release, "content": "c", "previous": {"api": None}, "waves": [["web"], ["api"]],
                       "state": "moving", "wave": 1, "started": T0.isoformat()})  # fmt: skip


def test_status_names_a_stale_lock_and_an_interrupted_rollout(store, ec2, instance):
    import subprocess

    current = publish(store, 0)
    report(store, instance, current)
    moving(store, current)
    gone = subprocess.Popen(["true"])
    gone.wait()
    result = status.status(store, ec2, where({"api": instance}), now=T0, lock_info=held_lock(gone.pid, T0), hostname="here")
    assert not result.ok
    assert result.problems[0].startswith(f"prod is locked: deploy by ci@here (pid {gone.pid}) since 2026-03-01T09:00:00+00:00")
    assert result.problems[0].endswith("but that process is gone (a stale lock): run 'damso unlock prod'")
    assert result.problems[1] == (f"the rollout of {current} was interrupted at wave 1 of 2 (its deploy is gone): "
                                  "'damso deploy prod' resumes it, 'damso rollback prod' goes back")  # fmt: skip
    assert result.rollout["state"] == "interrupted"
    assert result.instances[0]["rollout"] == f"on {current}; was interrupted at wave 1 of 2 (its deploy is gone)"
    data = result.to_dict()
    assert data["lock"]["holder_state"] == "gone" and "token" not in data["lock"]


def test_status_of_a_running_deploy_and_of_a_lock_held_elsewhere(store, ec2, instance):
    import os

    current = publish(store, 0)
    report(store, instance, current)
    moving(store, current)
    now = datetime.now(timezone.utc)
    running = status.status(store, ec2, where({"api": instance}), now=T0, lock_info=held_lock(os.getpid(), now),
                            hostname="here")  # fmt: skip
    assert running.rollout["state"] == "moving" and running.lock["holder_state"] == "alive"
    assert running.problems[0].endswith("still running on this machine; deploys wait for it")
    elsewhere = status.status(store, ec2, where({"api": instance}), now=T0, lock_info=held_lock(1, now, "ci@there"),
                              hostname="here")  # fmt: skip
    assert elsewhere.rollout["state"] == "moving" and elsewhere.lock["holder_state"] == "unknown"
    assert elsewhere.problems[0].endswith("on another machine; if that process is gone, run 'damso unlock prod'")
    unlocked = status.status(store, ec2, where({"api": instance}), now=T0)
    assert unlocked.rollout["state"] == "interrupted" and unlocked.lock is None


def test_a_recycled_pid_is_not_the_holder():
    import os

    from damso_ops.deploy import lock

    before = datetime.now(timezone.utc) - timedelta(days=400)  # long before this process started
    assert lock.holder_state(held_lock(os.getpid(), before), "here") == "gone"
    assert lock.holder_state(held_lock(os.getpid(), datetime.now(timezone.utc)), "here") == "alive"


def test_status_of_an_environment_without_a_current_release(store, ec2):
    result = status.status(store, ec2, where({}), now=T0)
    assert (result.current, result.problems, result.instances) == (None, ["prod has no current release"], [])


# ---- history ------------------------------------------------------------------------


@pytest.fixture
def three(store) -> list[str]:
    """r1; r2 with a new api commit (made current); r3 adding web and changing settings; and a
    half-uploaded release between r1 and r2, and one after r3."""
    r1 = publish(store, 0)
    half_uploaded(store, 5)
    r2 = publish(store, 10, commit="c2", image=API_IMAGE.replace("1", "2"))
    r3 = publish(store, 20, commit="c2", image=API_IMAGE.replace("1", "2"), current=False,
                 files={"api": {"compose.yml": compose(API_IMAGE.replace("1", "2")), "role.env": "A=1\n"},
                        "web": {"compose.yml": "services: {}\n"}},
                 settings={"api": {"health_timeout": 30}, "web": {"health_timeout": 20}})  # fmt: skip
    half_uploaded(store, 30)
    return [r1, r2, r3]


def test_prune_removes_unfinished_uploads_older_than_an_hour(store, three):
    r1, r2, r3 = three
    unfinished = sorted(store.unfinished_releases())
    assert len(unfinished) == 2 and not {r1, r2, r3} & set(unfinished)
    now = datetime.now(timezone.utc)
    assert releases.prune(store, now=now) == []  # just written: an upload may still be running
    assert releases.prune(store, now=now + timedelta(hours=2)) == unfinished
    assert store.release_ids() == [r1, r2, r3] and store.unfinished_releases() == {}
    assert [e["release"] for e in history.history(store, limit=0)] == [r3, r2, r1]


def test_history_is_newest_first_with_what_changed(store, three):
    r1, r2, r3 = three
    entries = history.history(store, limit=2)
    assert [(e["release"], e["current"], e["previous"]) for e in entries] == [(r3, False, r2), (r2, True, r1)]
    assert entries[0]["changes"] == {"images": [], "files": {"added": ["web/compose.yml"], "removed": [], "changed": []},
                                     "settings": ["web"]}  # fmt: skip
    assert entries[1]["changes"] == {
        "images": [{"service": "api", "from_commit": "c1", "to_commit": "c2", "from_image": API_IMAGE,
                    "to_image": API_IMAGE.replace("1", "2")}],
        "files": {"added": [], "removed": [], "changed": ["api/compose.yml"]},
        "settings": [],
    }  # fmt: skip
    assert entries[1]["build"] == "b10" and entries[1]["images"]["api"]["commit"] == "c2"


def test_history_without_a_limit_ends_at_the_first_release(store, three):
    entries = history.history(store, limit=0)
    assert [e["release"] for e in entries] == list(reversed(three))
    assert (entries[-1]["previous"], entries[-1]["changes"]) == (None, None)
    assert history.history(store, limit=1)[0]["previous"] == three[1]


# ---- rollback -----------------------------------------------------------------------


def test_rollback_target_defaults_to_the_release_before_current(store, three):
    r1, r2, _ = three
    manifest, pointer = rollback.rollback_target(store, None)  # skips the half-uploaded one between them
    assert manifest["release"] == r1 and pointer["release"] == r2
    assert rollback.rollback_target(store, three[2])[0]["release"] == three[2]


def test_rollback_target_names_the_latest_releases_for_an_unknown_id(store, three):
    with pytest.raises(UsageError) as exc:
        rollback.rollback_target(store, "nope")
    latest = sorted([*three, (T0 + timedelta(minutes=5)).strftime("%Y%m%dT%H%M%SZ") + "-0000000000",
                     (T0 + timedelta(minutes=30)).strftime("%Y%m%dT%H%M%SZ") + "-0000000000"])  # fmt: skip
    assert exc.value.message == f"prod has no release 'nope' (latest: {', '.join(latest)})."


def test_rollback_target_with_nothing_to_go_back_to(store):
    with pytest.raises(DamsoError) as exc:
        rollback.rollback_target(store, None)
    assert exc.value.message == "prod has no current release to roll back from."
    only = publish(store, 0)
    with pytest.raises(DamsoError) as exc:
        rollback.rollback_target(store, None)
    assert exc.value.message == f"prod has no release before {only} to roll back to."


def test_rollback_moves_the_pointer_and_waits_for_the_hosts(store, three, aws, make_config):
    r1, r2, _ = three
    target, events = Target(make_config(ROLES), "prod", aws), []
    report(store, "i-0api", r1)  # the host has converged already
    result = rollback.rollback(target, where({"api": "i-0api"}), timeout=5, on_event=lambda p, m: events.append((p, m)))
    assert (result.release, result.previous, result.changed, result.healthy) == (r1, r2, True, True)
    assert store.current() == {"release": r1, "content": store.manifest(r1)["content"]}
    assert events[0] == ("state", f"created state bucket {target.state_bucket}")  # the lock lives there
    assert events[1][0] == "lock" and events[1][1].startswith("prod locked for rollback by ")
    assert events[2] == ("release", f"{r1} is current again (was {r2})") and list(result.instances) == ["i-0api"]
    assert lock.read(aws.client("s3"), target.state_bucket, "prod") is None  # taken and released
    again = rollback.rollback(target, where({"api": "i-0api"}), to=r1, wait=False, on_event=lambda p, m: events.append((p, m)))
    assert (again.changed, again.instances, again.to_dict()["healthy"]) == (False, {}, None)
    assert events[-1] == ("release", f"{r1} is already current; nothing changed")


# ---- logs ---------------------------------------------------------------------------


def test_logs_of_a_role_per_container_with_a_line_limit(store):
    current = publish(store, 0)
    report(store, "i-0api", current, containers=[container("api", logs=["a1", "a2", "a3"]), container("worker", logs=["w1"])])
    found = logs.logs(store, where({"api": "i-0api"}), "api", lines=2)
    assert [(e["container"], e["lines"], e["release"]) for e in found] == [("api", ["a2", "a3"], current),
                                                                           ("worker", ["w1"], current)]  # fmt: skip
    assert [e["container"] for e in logs.logs(store, where({"api": "i-0api"}), "api", "worker")] == ["worker"]


def test_logs_name_what_exists_for_an_unknown_role_or_container(store):
    with pytest.raises(UsageError) as exc:
        logs.logs(store, where({"api": "i-0api"}), "db")
    assert exc.value.message == "prod has no deployed role 'db' (roles: api)."
    with pytest.raises(DamsoError) as exc:
        logs.logs(store, where({"api": "i-0api"}), "api")
    assert exc.value.message == "api (i-0api) has not reported yet, so there are no logs to show."
    report(store, "i-0api", "r1")
    with pytest.raises(UsageError) as exc:
        logs.logs(store, where({"api": "i-0api"}), "api", "db")
    assert exc.value.message == "api (i-0api) has no container 'db' (containers: api, worker)."


# ---- find_deployed ------------------------------------------------------------------


@pytest.fixture
def target(aws, make_config) -> Target:
    return Target(make_config(ROLES), "prod", aws)


def test_find_deployed_reads_the_stacks_state_objects(target):
    s3 = target.aws.client("s3")
    target.ensure_state_bucket()
    put_state(s3, "shared", {"artifact_bucket": ARTIFACTS, "vpc_id": "vpc-1"})
    put_state(s3, "api", {"instance_id": "i-0api", "private_ip": "10.0.1.5", "public_ip": "3.3.3.3", "extra": "x"})
    put_state(s3, "web", {}, resources=False)  # destroyed
    found = deployed.find_deployed(target)
    assert (found.state_bucket, found.artifact_bucket, found.missing) == (STATE, ARTIFACTS, ("web",))
    assert found.hosts == {"api": [{"instance_id": "i-0api", "private_ip": "10.0.1.5", "public_ip": "3.3.3.3"}]}
    assert found.instances() == {"api": ["i-0api"]}
    put_state(s3, "web", {"instance_id": "i-1", "instance_ids": ["i-1", "i-2"], "private_ips": ["10.0.1.6", "10.0.2.6"]})
    assert deployed.find_deployed(target).hosts["web"] == [{"instance_id": "i-1", "private_ip": "10.0.1.6", "public_ip": None},
                                                           {"instance_id": "i-2", "private_ip": "10.0.2.6", "public_ip": None}]


def test_find_deployed_of_a_never_deployed_environment(target):
    never = f"prod was never deployed (no state bucket {STATE})."
    with pytest.raises(DamsoError, match=never.replace("(", r"\(").replace(")", r"\)")):
        deployed.find_deployed(target)
    target.ensure_state_bucket()  # a bucket, but no shared stack in it
    with pytest.raises(DamsoError) as exc:
        deployed.find_deployed(target)
    assert exc.value.message == never and exc.value.hint == "Run 'damso deploy prod'."


def test_find_deployed_refuses_a_state_object_that_is_not_json(target):
    target.ensure_state_bucket()
    target.aws.client("s3").put_object(Bucket=STATE, Key="prod/shared.tfstate", Body=b"<html>")
    with pytest.raises(DamsoError) as exc:
        deployed.find_deployed(target)
    assert exc.value.message == f"The Terraform state s3://{STATE}/prod/shared.tfstate is not JSON."


def test_status_shows_every_instance_of_a_role_with_several(store, ec2):
    current = publish(store, 0)
    report(store, "i-0api1", current)
    report(store, "i-0api0", current)
    found = status.status(store, ec2, deployed.Deployed("prod", STATE, ARTIFACTS, {"api": [
        {"instance_id": "i-0api1", "private_ip": "10.0.11.5", "public_ip": None},
        {"instance_id": "i-0api0", "private_ip": "10.0.10.5", "public_ip": None}]}), stale_after=None)  # fmt: skip
    assert [(i["role"], i["instance_id"], i["release_desired"]) for i in found.instances] == [
        ("api", "i-0api0", current), ("api", "i-0api1", current)]
