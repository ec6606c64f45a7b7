"""The rollout engine (damso_ops/deploy/rollout.py) against in-process moto, with fake hosts that
report a release as soon as their pointer names it: wave order, halts, rollback scope, a resumed
rollout, several instances one at a time, draining from a load balancer."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timezone

import pytest

from damso_ops.deploy import rollout
from damso_ops.deploy.store import ReleaseStore
from damso_ops.deploy.target import Target
from tests.support.moto_env import put_report

ROLES_TOML = """
rollout = [["api"], ["web", "agent"], ["livekit"]]
[environments.prod.roles.api]
health_timeout = 10
count = 2
[environments.prod.roles.web]
health_timeout = 10
[environments.prod.roles.agent]
health_timeout = 10
[environments.prod.roles.livekit]
health_timeout = 10
"""
HOSTS = {"api": ["i-api0", "i-api1"], "web": ["i-web"], "agent": ["i-agent"], "livekit": ["i-lk"]}
ROLE_OF = {i: role for role, ids in HOSTS.items() for i in ids}


class Fleet:
    """Hosts that follow their pointers at once; `broken` roles report the new release unhealthy."""

    def __init__(self, store: ReleaseStore, broken=()):
        self.store, self.broken, self.log = store, set(broken), []

    def follow(self, instance: str) -> None:
        release = self.store.desired(ROLE_OF[instance], instance)
        if not release:
            return
        status = "unhealthy" if ROLE_OF[instance] in self.broken and release == self.store.current()["release"] else "healthy"
        self.log.append((instance, release, status))
        put_report(self.store, instance, role=ROLE_OF[instance], release=release, running=release, status=status,
                   containers=[], time=datetime.now(timezone.utc).isoformat())  # fmt: skip


@pytest.fixture
def fleet(store, monkeypatch):
    hosts = Fleet(store)
    for name in ("set_role_release", "set_instance_release"):
        original = getattr(ReleaseStore, name)

        def moved(self, key, release, original=original, name=name):
            original(self, key, release)
            for instance in HOSTS[key] if name == "set_role_release" else [key]:
                hosts.follow(instance)

        monkeypatch.setattr(ReleaseStore, name, moved)
    return hosts


def start(store, make_config, aws, release="r2", content="c2", drain=None):
    target = Target(make_config(ROLES_TOML), "prod", aws)
    state = rollout.begin(store, release, content, target.env.waves(), list(target.env.roles))
    mover = rollout.Mover(target, store, HOSTS, converge_local=False, timeout=5, on_event=lambda p, m: None, drain=drain)
    return target, state, mover


def released(store, fleet, make_config, aws) -> None:
    """r1 running everywhere, as after a first rollout."""
    store.make_current("r1", "c1")
    _, state, mover = start(store, make_config, aws, "r1", "c1")
    rollout.run(state, mover, store, rollback=True, rollback_earlier=False, on_event=lambda p, m: None)
    fleet.log.clear()


def test_waves_move_in_order_and_a_roles_instances_one_at_a_time(store, fleet, make_config, aws):
    released(store, fleet, make_config, aws)
    _, state, mover = start(store, make_config, aws)
    assert [e for e in fleet.log if e[1] == "r2"] == []  # holding moves nothing
    reports = rollout.run(state, mover, store, rollback=True, rollback_earlier=False, on_event=lambda p, m: None)
    moved = list(dict.fromkeys(instance for instance, release, _ in fleet.log if release == "r2"))
    assert moved[:2] == ["i-api0", "i-api1"] and set(moved[2:4]) == {"i-web", "i-agent"} and moved[4] == "i-lk"
    assert set(reports) == {i for ids in HOSTS.values() for i in ids}
    assert store.rollout()["state"] == "done" and store.outcome("r2")["state"] == "done"
    assert all(store.desired(ROLE_OF[i], i) == "r2" for i in ROLE_OF)
    assert store.instance_release("i-api0") is None  # instance pointers are gone once the role moved


def test_a_failed_wave_halts_later_waves_and_goes_back(store, fleet, make_config, aws):
    released(store, fleet, make_config, aws)
    fleet.broken = {"web"}
    _, state, mover = start(store, make_config, aws)
    with pytest.raises(rollout.RolloutHalted) as exc:
        rollout.run(state, mover, store, rollback=True, rollback_earlier=False, on_event=lambda p, m: None)
    assert exc.value.exit_code == 4 and "halted at wave 2 (web, agent)" in exc.value.message
    after = store.rollout()
    assert after["state"] == "rolled_back" and after["failed"]["wave"] == 2 and sorted(after["rolled_back"]) == ["agent", "web"]
    assert exc.value.data["rollout"]["failed"]["roles"] == ["web", "agent"]
    assert {r: store.role_release(r)[1] for r in HOSTS} == {"api": "r2", "web": "r1", "agent": "r1", "livekit": "r1"}
    assert "i-lk" not in [i for i, release, _ in fleet.log if release == "r2"]  # the last wave never moved
    assert store.current()["release"] == "r1"  # the environment points at where it came from


def test_rollback_of_earlier_waves_and_no_rollback(store, fleet, make_config, aws):
    released(store, fleet, make_config, aws)
    fleet.broken = {"livekit"}
    _, state, mover = start(store, make_config, aws)
    with pytest.raises(rollout.RolloutHalted):
        rollout.run(state, mover, store, rollback=True, rollback_earlier=True, on_event=lambda p, m: None)
    assert {r: store.role_release(r)[1] for r in HOSTS} == {r: "r1" for r in HOSTS}
    _, state, mover = start(store, make_config, aws, "r3", "c3")
    with pytest.raises(rollout.RolloutHalted) as exc:
        rollout.run(state, mover, store, rollback=False, rollback_earlier=False, on_event=lambda p, m: None)
    assert store.rollout()["state"] == "halted" and store.role_release("livekit")[1] == "r3"
    assert "Nothing was rolled back" in exc.value.hint


def test_an_interrupted_rollout_is_resumed_by_the_same_content(store, fleet, make_config, aws):
    released(store, fleet, make_config, aws)
    _, state, mover = start(store, make_config, aws)
    mover.move("api", "r2")  # wave 1 moved; then the deploy was killed
    assert store.rollout()["state"] == "moving"
    _, again, mover = start(store, make_config, aws, "r2-new-id", "c2")
    assert again["release"] == "r2" and again.get("resumed")  # the same content: the same rollout
    assert again["previous"] == {r: "r1" for r in HOSTS}
    rollout.run(again, mover, store, rollback=True, rollback_earlier=False, on_event=lambda p, m: None)
    assert {r: store.role_release(r)[1] for r in HOSTS} == {r: "r2" for r in HOSTS}
    assert rollout.settled(store, "c2", list(HOSTS)) == "r2" and rollout.settled(store, "c3", list(HOSTS)) is None


def test_instances_behind_a_load_balancer_are_drained_while_they_move(store, fleet, make_config, aws):
    released(store, fleet, make_config, aws)
    drained = []

    @contextmanager
    def drain(role, instance):
        drained.append(("out", instance, store.desired(role, instance)))
        yield
        drained.append(("in", instance, store.desired(role, instance)))

    _, state, mover = start(store, make_config, aws, drain=drain)
    mover.move("api", "r2")
    assert drained == [("out", "i-api0", "r1"), ("in", "i-api0", "r2"), ("out", "i-api1", "r1"), ("in", "i-api1", "r2")]


def test_without_waiting_every_role_moves_at_once(store, fleet, make_config, aws):
    released(store, fleet, make_config, aws)
    start(store, make_config, aws)
    rollout.move_all_at_once(store, "r2", list(HOSTS), HOSTS)
    assert {r: store.role_release(r)[1] for r in HOSTS} == {r: "r2" for r in HOSTS}
    assert store.rollout()["state"] == "done" and store.rollout()["waited"] is False
