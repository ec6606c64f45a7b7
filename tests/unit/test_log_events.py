"""damso logs from CloudWatch Logs, against in-process moto: every instance of a role merged in
time order, narrowed by instance, container, --since and --grep, secrets masked; following
shows each line once, after the other instances' lines of its time; without CloudWatch the
hosts' reports, said so."""

from __future__ import annotations

import itertools
import json
import time

import pytest
from typer.testing import CliRunner

from damso_ops import redact
from damso_ops.cli import app
from damso_ops.deploy.target import Target
from damso_ops.errors import DamsoError, UsageError
from damso_ops.operate import log_events
from tests.support.moto_env import ARTIFACTS, put_report, put_state

GROUP = "/damso/unit-prod/api"
SENTINEL = "sentinel-log-secret-77c1e0"
ROLES = """
[environments.prod.roles.api]
services = ["api"]
secrets = ["API_TOKEN"]
"""
NOW = time.time()


def ms(seconds_ago: float) -> int:
    return int((NOW - seconds_ago) * 1000)


@pytest.fixture
def logs(aws):
    client = aws.client("logs")
    client.create_log_group(logGroupName=GROUP)
    return client


def put(client, stream: str, *events: tuple[float, str]) -> None:
    """Lines of one instance's container: (seconds ago, message)."""
    if stream not in [s["logStreamName"] for s in client.describe_log_streams(logGroupName=GROUP)["logStreams"]]:
        client.create_log_stream(logGroupName=GROUP, logStreamName=stream)
    client.put_log_events(logGroupName=GROUP, logStreamName=stream,
                          logEvents=[{"timestamp": ms(ago), "message": text} for ago, text in events])  # fmt: skip


def texts(lines) -> list[tuple[str, str, str]]:
    return [(line.instance_id, line.container, line.message) for line in lines]


def test_every_instance_merged_in_time_order_narrowed_by_instance_container_and_pattern(logs):
    put(logs, "i-a/api", (50, "a1 started"), (30, "a2 ERROR db down"))
    put(logs, "i-b/api", (40, "b1 started"), (20, "b2 ok"))
    put(logs, "i-a/worker", (35, "w1 ERROR job"))
    read = lambda **kw: texts(log_events.Reader(logs, GROUP, **kw).read(ms(60)))  # noqa: E731
    assert read() == [("i-a", "api", "a1 started"), ("i-b", "api", "b1 started"), ("i-a", "worker", "w1 ERROR job"),
                      ("i-a", "api", "a2 ERROR db down"), ("i-b", "api", "b2 ok")]  # fmt: skip
    assert read(container="api") == [("i-a", "api", "a1 started"), ("i-b", "api", "b1 started"),
                                     ("i-a", "api", "a2 ERROR db down"), ("i-b", "api", "b2 ok")]  # fmt: skip
    assert read(instances=["i-b"]) == [("i-b", "api", "b1 started"), ("i-b", "api", "b2 ok")]
    assert read(pattern="ERROR") == [("i-a", "worker", "w1 ERROR job"), ("i-a", "api", "a2 ERROR db down")]
    assert texts(log_events.Reader(logs, GROUP).read(ms(32))) == [("i-a", "api", "a2 ERROR db down"), ("i-b", "api", "b2 ok")]
    assert log_events.Reader(logs, GROUP).exists() and not log_events.Reader(logs, GROUP + "x").exists()


def test_tail_keeps_the_last_lines_of_each_container():
    lines = [log_events.LogLine(n, inst, "api", f"{inst}{n}") for n, inst in enumerate(["a", "b", "a", "a", "b"])]
    assert [line.message for line in log_events.tail(lines, 2)] == ["b1", "a2", "a3", "b4"]
    assert log_events.tail(lines, 0) == lines


def test_following_shows_each_line_once_after_the_lag_and_a_late_one_when_it_comes(logs):
    put(logs, "i-a/api", (30, "old"))
    reader = log_events.Reader(logs, GROUP)
    follower = log_events.Follower(reader, ms(60), lag=3, overlap=60)
    assert texts(follower.poll(NOW)) == [("i-a", "api", "old")]
    put(logs, "i-a/api", (10, "a at -10"), (2, "a at -2"))
    put(logs, "i-b/api", (11, "b at -11"), (10, "b at -10 twice"), (10, "b at -10 twice"))
    assert texts(follower.poll(NOW)) == []  # nothing new up to 3 s ago since the last poll
    assert texts(follower.poll(NOW + 0.5)) == [("i-b", "api", "b at -11"), ("i-a", "api", "a at -10"),
                                             ("i-b", "api", "b at -10 twice"), ("i-b", "api", "b at -10 twice")]  # fmt: skip
    put(logs, "i-b/api", (12, "b late"))  # arrived after later lines were shown: shown now, not lost
    assert texts(follower.poll(NOW + 10)) == [("i-b", "api", "b late"), ("i-a", "api", "a at -2")]
    assert texts(follower.poll(NOW + 11)) == []


def test_follow_starts_with_the_last_lines_of_each_container_then_polls(logs):
    put(logs, "i-a/api", *[(40 - n, f"a{n}") for n in range(5)])
    clock, slept = iter([NOW, NOW + 2, NOW + 4]), []
    found = log_events.follow(log_events.Reader(logs, GROUP), ms(60), 2, poll=2, clock=lambda: next(clock), sleep=slept.append)
    assert [line.message for line in itertools.islice(found, 2)] == ["a3", "a4"]
    put(logs, "i-a/api", (5, "new"))
    assert next(found).text().endswith(" i-a api | new") and slept == [2]


def test_secret_values_and_their_lines_are_masked(aws, logs):
    redact.forget_all()
    ssm = aws.client("ssm")
    ssm.put_parameter(Name="/damso/prod/api/API_TOKEN", Value=SENTINEL, Type="SecureString")
    ssm.put_parameter(Name="/damso/prod/api/KEY_PEM", Value="-----BEGIN KEY-----\nMIIBsentinelkeyline\n-----END KEY-----",
                      Type="SecureString")  # fmt: skip
    log_events.register_secrets(ssm, "prod", "api")
    put(logs, "i-a/api", (5, f"token={SENTINEL}"), (4, "  MIIBsentinelkeyline"))
    assert [line.message for line in log_events.Reader(logs, GROUP).read(ms(60))] == ["token=********", "  ********"]
    redact.forget_all()


def test_secrets_that_cannot_be_read_show_no_line():
    class Denied:
        def get_paginator(self, name):
            from botocore.exceptions import ClientError

            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "GetParametersByPath")

    with pytest.raises(DamsoError, match=r"Could not read api's secrets from SSM \(/damso/prod/api/\) to mask its log lines "
                                         r"\(AccessDeniedException\); no line is shown unmasked\."):  # fmt: skip
        log_events.register_secrets(Denied(), "prod", "api")


@pytest.mark.parametrize("text,expected", [("30s", 30), ("10m", 600), ("2h", 7200), ("1d", 86400)])
def test_since_a_duration_ago(text, expected):
    assert log_events.parse_since(text, 10_000_000) == (10_000_000 - expected) * 1000


def test_since_an_iso_time_utc_unless_it_says_otherwise():
    now = 1_800_000_000
    assert log_events.parse_since("2026-12-04T21:00:00Z", now) == 1796418000000
    assert log_events.parse_since("2026-12-04T21:00:00", now) == 1796418000000
    assert log_events.parse_since("2026-12-04T22:00:00+01:00", now) == 1796418000000
    with pytest.raises(UsageError, match=r"^--since '10 minutes' is neither a duration \(30s, 10m, 2h, 1d\) nor an ISO time"):
        log_events.parse_since("10 minutes", now)
    with pytest.raises(UsageError, match=r"^--since '2099-01-01' is in the future\.$"):
        log_events.parse_since("2099-01-01", now)


# ---- the command ----------------------------------------------------------------------


@pytest.fixture
def deployed(aws, make_config, store):
    """prod deployed: api on two instances, their state in the state bucket."""
    def make(extra: str = "") -> Target:
        target = Target(make_config(ROLES + extra), "prod", aws)
        target.ensure_state_bucket()
        s3 = aws.client("s3")
        put_state(s3, "shared", {"artifact_bucket": ARTIFACTS})
        put_state(s3, "api", {"instance_id": "i-a", "instance_ids": ["i-a", "i-b"], "private_ip": "10.0.1.5"})
        aws.client("ssm").put_parameter(Name="/damso/prod/api/API_TOKEN", Value=SENTINEL, Type="SecureString")
        return target

    return make


def damso(target: Target, *args: str):
    return CliRunner().invoke(app, ["--config", str(target.cfg.path), "logs", "prod", *args])


def test_logs_cli_prints_each_line_with_its_instance_and_container_masked(deployed, logs):
    target = deployed()
    put(logs, "i-a/api", (50, "a1"), (30, f"a2 {SENTINEL}"))
    put(logs, "i-b/api", (40, "b1"))
    result = damso(target, "api")
    assert result.exit_code == 0, result.output
    assert [line.split(" ", 1)[1] for line in result.stdout.splitlines()] == \
        ["i-a api | a1", "i-b api | b1", "i-a api | a2 ********"]  # fmt: skip
    result = damso(target, "api", "--instance", "i-b", "--since", log_events.LogLine(ms(45), "", "", "").time, "--json")
    assert [json.loads(line) for line in result.stdout.splitlines()] == [{
        "time": log_events.LogLine(ms(40), "", "", "").time, "timestamp": ms(40), "role": "api", "instance_id": "i-b",
        "container": "api", "message": "b1"}]  # fmt: skip
    assert SENTINEL not in result.output
    result = damso(target, "api", "--instance", "i-zzz")
    assert result.exit_code == 2 and "api in prod has no instance 'i-zzz' (instances: i-a, i-b)." in result.output


def test_without_cloudwatch_the_reports_say_so(deployed, store):
    target = deployed("[environments.prod.logs]\ncloudwatch = false\n")
    put_report(store, "i-a", release="r1", running="r1", status="healthy", time="t",
               containers=[{"name": "api", "logs": ["from the report"]}])  # fmt: skip
    result = damso(target, "api", "--instance", "i-a")
    assert result.exit_code == 0, result.output
    assert "prod: CloudWatch Logs is off (environments.prod.logs.cloudwatch = false); showing the lines hosts put in their last reports." in result.stderr
    assert "from the report" in result.stdout
    result = damso(target, "api", "-f")
    assert result.exit_code == 2
    assert "--follow needs CloudWatch Logs, which prod turns off (environments.prod.logs.cloudwatch = false)" in result.output


def test_before_the_log_group_exists_the_reports_say_so(deployed, store):
    target = deployed()
    put_report(store, "i-a", release="r1", running="r1", status="healthy", time="t", containers=[{"name": "api", "logs": ["x"]}])
    result = damso(target, "api", "--instance", "i-a")
    assert result.exit_code == 0, result.output
    assert f"prod: no log group {GROUP} yet (run 'damso deploy prod' to make it)" in result.stderr
    result = damso(target, "api", "--grep", "x")
    assert result.exit_code == 2 and f"api in prod has no log group {GROUP} yet" in result.output
