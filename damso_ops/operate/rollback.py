"""damso rollback: point the environment at an earlier release (no build, no Terraform),
then converge and wait for health exactly like a deploy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from damso_ops.deploy import converge, planning, releases
from damso_ops.deploy.store import ReleaseStore
from damso_ops.deploy.target import Target
from damso_ops.errors import DamsoError, UsageError
from damso_ops.operate.deployed import Deployed

Event = Callable[[str, str], None]


@dataclass
class RollbackResult:
    env: str
    release: str
    previous: str | None
    changed: bool
    instances: dict[str, dict] = field(default_factory=dict)
    waited: bool = False

    @property
    def healthy(self) -> bool:
        return releases.all_healthy(self.instances, self.release)

    def to_dict(self) -> dict:
        return {
            "env": self.env,
            "release": self.release,
            "previous": self.previous,
            "changed": self.changed,
            "healthy": self.healthy if self.waited else None,
            "instances": self.instances,
        }


def rollback_target(store: ReleaseStore, to: str | None) -> tuple[dict, dict | None]:
    """(manifest of the release to point at, the current pointer). Default: the release before current."""
    env = store.env
    pointer = store.current()
    ids = store.release_ids()
    if to is None:
        if not pointer:
            raise DamsoError(f"{env} has no current release to roll back from.")
        older = (i for i in reversed(ids) if i < pointer["release"] and store.manifest(i))
        to = next(older, None)
        if to is None:
            raise DamsoError(f"{env} has no release before {pointer['release']} to roll back to.",
                             hint=f"See 'damso releases {env}'.")  # fmt: skip
    manifest = store.manifest(to)
    if manifest is None:
        recent = ", ".join(ids[-5:]) or "none"
        raise UsageError(f"{env} has no release {to!r} (latest: {recent}).")
    return manifest, pointer


def rollback(
    target: Target,
    where: Deployed,
    *,
    to: str | None = None,
    wait: bool = True,
    timeout: float | None = None,
    converge_local: bool = False,
    lock_timeout: float = 0,
    on_event: Event,
) -> RollbackResult:
    """Make an earlier release current (no build, no Terraform) under the environment's lock,
    then converge and wait like a deploy."""
    with planning.locked(target, "rollback", timeout=lock_timeout, on_event=on_event):
        return _rollback(target, where, to=to, wait=wait, timeout=timeout, converge_local=converge_local, on_event=on_event)


def _rollback(target: Target, where: Deployed, *, to: str | None, wait: bool, timeout: float | None, converge_local: bool,
              on_event: Event) -> RollbackResult:  # fmt: skip
    store = target.store(where.artifact_bucket)
    manifest, pointer = rollback_target(store, to)
    release = manifest["release"] if manifest.get("release") else to
    previous = (pointer or {}).get("release")
    hosts = {r: ids for r, ids in where.instances().items() if r in manifest.get("roles", {})}
    moved = [r for r in hosts if store.role_release(r) != (True, release) or any(store.instance_release(i) for i in hosts[r])]
    result = RollbackResult(where.env, release, previous, changed=previous != release or bool(moved))
    if result.changed:
        for role in hosts:  # every role, at once: a rollback returns to a release that ran before
            for instance in hosts[role]:
                store.clear_instance_release(instance)
            store.set_role_release(role, release)
        store.make_current(release, manifest.get("content", ""))
        state = store.rollout()
        if state and state.get("state") in ("moving", "halted"):  # an interrupted or halted rollout ends here
            state.update(state="rolled_back", rolled_back=sorted(hosts), reverted_to=release)
            store.set_rollout(state)
        on_event("release", f"{release} is current again (was {previous})")
    else:
        on_event("release", f"{release} is already current; nothing changed")
    result.waited = wait
    result.instances = converge.converge_and_wait(target, store, release, hosts, converge_local=converge_local,
                                                  wait=wait, timeout=timeout, on_event=on_event)  # fmt: skip
    return result
