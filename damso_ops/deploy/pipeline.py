"""damso plan and damso deploy: the spine of a deploy, step by step.

  request (resolved once, checked offline) → secrets in SSM → [look-ahead without the lock] →
  the environment's lock → stacks planned and applied (deploy/planning.py) →
  release assembled (deploy/assemble.py), compared with the current one [, uploaded] →
  rolled out wave by wave (deploy/rollout.py) and waited for (deploy/converge.py)

Library code: progress goes through on_event, confirmation through confirm().
"""

from __future__ import annotations

from damso_ops.deploy import assemble, converge, drain, lock, planning, redis, releases, rollout
from damso_ops.deploy.planning import Confirm, Event, Planner, Snapshot
from damso_ops.deploy.request import DeployRequest, ensure_secrets
from damso_ops.deploy.result import DeployResult
from damso_ops.deploy.target import Target
from damso_ops.errors import DamsoError

__all__ = ["DeployResult", "check", "deploy", "locked_deploy", "plan"]


def _secrets(target: Target, request: DeployRequest, on_event: Event, dry_run: bool) -> list[str]:
    done = ensure_secrets(target.aws.client("ssm"), target.env_name, target.env, target.state_dir, request.roles, dry_run)
    if done:
        on_event("secrets", f"{'would store' if dry_run else 'stored'} in SSM: {', '.join(done)}")
    return done


def check(target: Target, request: DeployRequest) -> list[str]:
    """The checks that need AWS but change nothing (secrets, LiveKit keys): run before the lock
    and its state bucket are made, so a missing secret still creates nothing. Returns the
    secrets a deploy would store."""
    return _secrets(target, request, lambda phase, message: None, dry_run=True)


def plan(target: Target, request: DeployRequest, *, on_event: Event, jobs: int = 4) -> DeployResult:
    """What a deploy would change: Terraform plans and file diffs. Nothing is applied,
    uploaded, stored or pointed. Stacks that depend on a changing stack are listed as pending."""
    _secrets(target, request, on_event, dry_run=True)
    if not target.bucket_exists(target.state_bucket):
        raise DamsoError(f"{target.env_name} was never deployed (no state bucket {target.state_bucket}); nothing to compare with.",
                         hint=f"Run 'damso deploy {target.env_name}'.")  # fmt: skip
    result = DeployResult(target.env_name, "", False, permissions=assemble.permissions(target, request))
    outputs, result.plans, result.pending = Planner(target, list(request.stacks), on_event, jobs=jobs).preview()
    if result.pending:
        return result
    store = target.store(outputs.artifact_bucket)
    release = assemble.release(target, request, outputs, store)
    result.release = release.id
    result.diffs = releases.diff(store, store.current(), release)
    return result


def locked_deploy(target: Target, request: DeployRequest, *, command: str = "deploy", lock_timeout: float = 0,
                  on_event: Event, **options) -> DeployResult:  # fmt: skip
    """The sequence every roll-out uses (deploy, livekit up, webhook changes): check what needs
    AWS but changes nothing; look whether anything is to be done at all (if not, nothing is
    written, not even the lock); take the environment's lock, deploy, release the lock."""
    to_store = check(target, request)
    ahead = _look_ahead(target, request, on_event, options.get("jobs", 4), options.get("refresh", False), to_store)
    if isinstance(ahead, DeployResult):
        return ahead
    with planning.locked(target, command, timeout=lock_timeout, on_event=on_event) as held:
        return deploy(target, request, held=held, on_event=on_event, snapshot=ahead, **options)


def _look_ahead(target: Target, request: DeployRequest, on_event: Event, jobs: int, refresh: bool,
                to_store: list[str]) -> DeployResult | Snapshot | None:  # fmt: skip
    """Without the lock and writing nothing: plan every stack at once (-lock=false). A DeployResult
    when nothing is to be done (no plan changes, no secret `to_store`, the release settled and
    every host reporting it healthy); else the plans, for the deploy to use if no state changes
    meanwhile (planning.Planner.apply_all compares the ETags)."""
    if not target.bucket_exists(target.state_bucket) or lock.read(target.aws.client("s3"), target.state_bucket, target.env_name):
        return None
    snapshot = Planner(target, list(request.stacks), on_event, jobs=jobs).at_once(lock=False, refresh=refresh)
    if snapshot is None or to_store or any(not p.empty for p in snapshot.plans):
        return snapshot
    store = target.store(snapshot.outputs.artifact_bucket)
    release = assemble.release(target, request, snapshot.outputs, store)
    settled = rollout.settled(store, release.content, request.roles)
    hosts = assemble.hosts(target, request, snapshot.outputs)
    reports = converge.healthy_now(target, store, settled, hosts) if settled else None
    if reports is None:
        return snapshot
    on_event("release", f"{settled} is current and unchanged; nothing uploaded")
    on_event("health", f"every instance already reports {settled} healthy; not waiting (nothing was written, not even the lock)")
    return DeployResult(target.env_name, settled, False, plans=list(snapshot.plans), instances=reports)


def deploy(
    target: Target,
    request: DeployRequest,
    *,
    held,
    confirm: Confirm,
    on_event: Event,
    jobs: int = 4,
    wait: bool = True,
    timeout: float | None = None,
    converge_local: bool = False,
    rollback: bool | None = None,
    snapshot: Snapshot | None = None,
    refresh: bool = False,
) -> DeployResult:
    """Apply what changed, release, roll it out wave by wave, under `held` (planning.locked).
    rollback None: the environment's setting. snapshot: plans made before the lock was taken.
    refresh: plan every stack, even those unchanged since their last clean plan."""
    _secrets(target, request, on_event, dry_run=False)
    done = Planner(target, list(request.stacks), on_event, jobs=jobs, held=held).apply_all(confirm, snapshot=snapshot,
                                                                                          refresh=refresh)  # fmt: skip
    outputs = done.outputs
    result = DeployResult(target.env_name, "", False, plans=done.plans, applied=done.applied)
    if outputs.redis_replication_group and not target.aws.emulated:  # the emulator makes no replication group
        stored = redis.ensure_auth(target.aws.client("elasticache"), target.aws.client("ssm"), target.env_name,
                                   target.env, outputs.redis_replication_group, on_event)  # fmt: skip
        if stored:
            on_event("secrets", f"stored: {', '.join(stored)}")
    store = target.store(outputs.artifact_bucket)
    release = assemble.release(target, request, outputs, store)
    hosts = assemble.hosts(target, request, outputs)
    settled = rollout.settled(store, release.content, request.roles)
    if settled:
        result.release = settled
        on_event("release", f"{settled} is current and unchanged; nothing uploaded")
        result.instances = converge.settled_health(target, store, settled, hosts, converge_local=converge_local,
                                                   wait=wait, timeout=timeout, on_event=on_event)  # fmt: skip
        return result
    state = store.rollout()
    if not (state and state.get("content") == release.content and state.get("state") in ("moving", "halted")):
        stats = releases.upload(store, release)
        result.uploaded = stats.put
        on_event("release", f"{release.id} uploaded ({stats.put} objects, {stats.skipped} already there)")
        pruned = releases.prune(store)
        if pruned:
            on_event("release", f"removed unfinished uploads (no manifest, older than an hour): {', '.join(pruned)}")
    state = rollout.begin(store, release.id, release.content, target.env.waves(request.roles), list(target.env.roles))
    result.release, result.changed, result.rollout = state["release"], True, state
    if state.get("resumed"):
        on_event("rollout", f"resuming the rollout of {state['release']} (wave {state['wave']} of {len(state['waves'])})")
    if not wait:
        rollout.move_all_at_once(store, state["release"], list(request.roles), hosts)
        on_event("rollout", f"{state['release']} is current for {', '.join(request.roles)} at once (--no-wait keeps no order)")
        converge.converge_and_wait(target, store, state["release"], hosts, converge_local=converge_local, wait=False,
                                   timeout=timeout, on_event=on_event)  # fmt: skip
        return result
    mover = rollout.Mover(target, store, hosts, converge_local=converge_local, timeout=timeout, on_event=on_event,
                          drain=drain.drainer(target, outputs, on_event))  # fmt: skip
    result.instances = rollout.run(state, mover, store, on_event=on_event,
                                   rollback=target.env.rollback if rollback is None else rollback,
                                   rollback_earlier=target.env.rollback_earlier_waves)  # fmt: skip
    return result
