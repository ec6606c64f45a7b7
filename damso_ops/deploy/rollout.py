"""Ordered roll-outs: waves of roles, one instance at a time, halt and roll back.

After a release is uploaded, hosts are moved to it through pointers (deploy/store.py):

1. every role gets its own pointer, held at the release it runs now;
2. the environment pointer names the release the rollout heads to;
3. wave by wave (environments.<env>.rollout), the roles of a wave move together; a
   role's instances move one at a time when it has several (an instance pointer ahead
   of its role's; drained from its load balancer first), each healthy before the next;
4. a wave that is not healthy halts the rollout: later waves never move. With rollback
   on, the failed wave's roles (and the earlier waves' with rollback_earlier_waves) are
   pointed back to the release they ran, and damso waits until they are healthy again.

The state lives in <env>/rollout.json, written before anything moves: a deploy that is
interrupted (Ctrl-C, SIGKILL) is completed by the next deploy of the same content, or
reverted by `damso rollback`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime, timezone

from damso_ops.concurrency import parallel
from damso_ops.deploy import converge, render
from damso_ops.deploy.store import ReleaseStore
from damso_ops.deploy.target import Target
from damso_ops.errors import DamsoError

Event = Callable[[str, str], None]
Drain = Callable[[str, str], AbstractContextManager]  # (role, instance) → out of its load balancer while inside


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class RolloutHalted(DamsoError):
    """A wave did not become healthy; later waves did not move."""

    exit_code = 4

    def __init__(self, state: dict, cause: DamsoError):
        failed = state["failed"]
        roles = ", ".join(failed["roles"])
        back = state.get("rolled_back") or []
        if back:
            hint = f"Rolled back: {', '.join(back)} run their previous release again."
        else:
            hint = f"Nothing was rolled back (--no-rollback or nothing to return to): {roles} stay as they are for debugging."
        super().__init__(
            f"Rollout of {state['release']} halted at wave {failed['wave']} ({roles}): {cause.message}",
            hint=hint + " Later waves did not move.",
            details=cause.details,
        )
        self.data = {"rollout": state, "failing": getattr(cause, "failing", [])}


def begin(store: ReleaseStore, release: str, content: str, waves: list[list[str]], all_roles: list[str]) -> dict:
    """The rollout to run: the interrupted or halted one of the same content, or a new one
    whose roles are first held at the release each runs now."""
    state = store.rollout()
    if state and state.get("content") == content and state.get("state") in ("moving", "halted"):
        state.update(state="moving", resumed=_now())
        store.set_rollout(state)
        return state
    old = store.current() or {}
    previous = {}
    for role in all_roles:
        has_pointer, pinned = store.role_release(role)
        previous[role] = pinned if has_pointer else old.get("release")
        store.set_role_release(role, previous[role])  # hold every role where it is
    store.make_current(release, content)
    state = {"release": release, "content": content, "previous": previous, "previous_env": old or None,
             "waves": waves, "state": "moving", "wave": 1, "started": _now()}  # fmt: skip
    store.set_rollout(state)
    return state


def settled(store: ReleaseStore, content: str, roles) -> str | None:
    """The release id when every role already runs a release of this content and no rollout is
    under way; None otherwise (a deploy must move something)."""
    current = store.current()
    if not current or current.get("content") != content:
        return None
    state = store.rollout()
    if state and state.get("content") == content and state.get("state") != "done":
        return None
    for role in roles:
        has_pointer, pinned = store.role_release(role)
        if has_pointer and pinned != current["release"]:
            return None
    return current["release"]


class Mover:
    """Moves a role's instances to a release and waits until they report it healthy."""

    def __init__(self, target: Target, store: ReleaseStore, hosts: dict[str, list[str]], *, converge_local: bool,
                 timeout: float | None, on_event: Event, drain: Drain | None = None):  # fmt: skip
        self.target, self.store, self.hosts = target, store, hosts
        self.converge_local, self.timeout, self.on_event = converge_local, timeout, on_event
        self.drain = drain or (lambda role, instance: nullcontext())

    def _converge(self, role: str, instance: str) -> None:
        if self.converge_local:
            index = self.hosts[role].index(instance)
            converge.converge_locally(self.target, {role: instance}, self.store.bucket, self.on_event, 1,
                                      index=index if len(self.hosts[role]) > 1 else None)  # fmt: skip

    def _wait(self, role: str, instances: list[str], release: str, since: str | None) -> dict[str, dict]:
        if not instances:
            return {}
        limit = converge.health_timeout(self.target, [role], self.timeout)
        return converge.wait_healthy(self.store, release, {i: role for i in instances}, limit, self.on_event, since=since)

    def _assign(self, role: str, release: str, instance: str) -> None:
        """A role whose release has tasks: name the one instance that runs them (deploy/store.py)."""
        assign(self.store, role, release, instance, self.on_event)

    def move(self, role: str, release: str | None) -> dict[str, dict]:
        """Point the role at `release`: its instances one at a time when it has several."""
        instances = self.hosts.get(role, [])
        has_pointer, pinned = self.store.role_release(role)
        if release is None:  # back to "nothing": a first rollout that failed has nothing to return to
            self.store.set_role_release(role, None)
            return {}
        if has_pointer and pinned == release and not any(self.store.instance_release(i) for i in instances):
            if all(self._healthy(i, release) for i in instances):
                return {i: self.store.reports()[i] for i in instances}
            since = _now()  # moved before (an interrupted or halted rollout): look again
            if instances:
                self._assign(role, release, instances[0])  # a failed task runs again
            for instance in instances:
                self._converge(role, instance)
            return self._wait(role, instances, release, since)
        reports: dict[str, dict] = {}
        if len(instances) <= 1:
            since = _now()
            if instances:
                self._assign(role, release, instances[0])
            self.store.set_role_release(role, release)
            for instance in instances:
                self._converge(role, instance)
            return self._wait(role, instances, release, since)
        for n, instance in enumerate(instances, 1):
            if self.store.desired(role, instance) == release and self._healthy(instance, release):
                continue
            self.on_event("rollout", f"{role}: instance {n}/{len(instances)} ({instance}) → {release}")
            if not reports:  # the first instance to move runs the tasks; the others find them done
                self._assign(role, release, instance)
            with self.drain(role, instance):
                since = _now()
                self.store.set_instance_release(instance, release)
                self._converge(role, instance)
                reports.update(self._wait(role, [instance], release, since))
        self.store.set_role_release(role, release)
        for instance in instances:
            self.store.clear_instance_release(instance)
        return reports

    def _healthy(self, instance: str, release: str) -> bool:
        report = self.store.reports().get(instance, {})
        return report.get("running") == release and report.get("status") == "healthy"


def run(state: dict, mover: Mover, store: ReleaseStore, *, rollback: bool, rollback_earlier: bool,
        on_event: Event) -> dict[str, dict]:  # fmt: skip
    """Move the waves in order; on a failed wave, halt (and roll back); return the reports."""
    release, waves = state["release"], state["waves"]
    reports: dict[str, dict] = {}
    for n, wave in enumerate(waves, 1):  # after an interruption, waves already moved are only checked
        state["wave"] = n
        store.set_rollout(state)
        on_event("rollout", f"wave {n}/{len(waves)}: {', '.join(wave)} → {release}")
        try:
            for found in parallel(lambda role: mover.move(role, release), wave, len(wave)):
                reports.update(found)
        except DamsoError as exc:
            state.update(state="halted", finished=_now(),
                         failed={"wave": n, "roles": wave, "error": exc.message, "details": exc.details,
                                 "reports": getattr(exc, "reports", {})})  # fmt: skip
            store.set_rollout(state)
            on_event("rollout", f"halted at wave {n}: {exc.message}")
            if rollback:
                _roll_back(state, mover, store, [r for w in waves[:n] for r in w] if rollback_earlier else wave, on_event)
            raise RolloutHalted(state, exc) from None
    state.update(state="done", finished=_now())
    store.set_rollout(state)
    return reports


def _roll_back(state: dict, mover: Mover, store: ReleaseStore, roles: list[str], on_event: Event) -> None:
    back = [r for r in roles if state["previous"].get(r) != state["release"]]
    on_event("rollback", f"{', '.join(back) or 'nothing'} back to the release they ran before")
    errors = []

    def one(role: str) -> None:
        for instance in mover.hosts.get(role, []):
            store.clear_instance_release(instance)
        try:
            mover.move(role, state["previous"].get(role))
        except DamsoError as exc:
            errors.append(f"{role}: {exc.message}")

    parallel(one, back, max(1, len(back)))
    previous_env = state.get("previous_env")
    if previous_env and previous_env.get("release"):
        store.make_current(previous_env["release"], previous_env.get("content", ""))
    state.update(state="rolled_back", rolled_back=back, rollback_errors=errors, finished=_now())
    store.set_rollout(state)


def assign(store: ReleaseStore, role: str, release: str, instance: str, on_event: Event) -> None:
    """If the role's files of the release have tasks, name the one instance that runs them (unless
    they are done): the role's other hosts wait for them (templates/host/reconcile.py)."""
    manifest = store.manifest(release) or {}
    if render.TASKS_FILE in manifest.get("roles", {}).get(role, {}) and store.assign_tasks(release, role, instance):
        on_event("tasks", f"{role}: the release tasks of {release} run on {instance}")


def move_all_at_once(store: ReleaseStore, release: str, roles: list[str], hosts: dict[str, list[str]]) -> None:
    """--no-wait: every role points at the release now (no order can be kept without waiting)."""
    for role in roles:
        if hosts.get(role):
            assign(store, role, release, hosts[role][0], lambda phase, message: None)
        for instance in hosts.get(role, []):
            store.clear_instance_release(instance)
        store.set_role_release(role, release)
    state = store.rollout() or {}
    state.update(state="done", finished=_now(), waited=False)
    store.set_rollout(state)
