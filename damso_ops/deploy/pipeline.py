"""damso plan and damso deploy: two functions over the same steps.

  request (resolved once, checked offline) → secrets in SSM → state bucket →
  stacks, layer by layer: user-data, inputs, init, plan [, confirm, apply], outputs →
  release: render, compare with current [, upload, make current] →
  [converge, wait healthy]

Library code: progress goes through on_event, confirmation through confirm().
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone

from damso_ops import secrets
from damso_ops.deploy import (
    converge,
    drain,
    livekit_keys,
    lock,
    redis,
    releases,
    render,
    rollout,
    stackops,
    stacks,
    terraform,
    workspace,
)
from damso_ops.deploy.request import DeployRequest, ensure_secrets
from damso_ops.deploy.store import ReleaseStore
from damso_ops.deploy.target import Target
from damso_ops.errors import DamsoError, UsageError

Event = Callable[[str, str], None]  # (phase, message)
Confirm = Callable[[list[terraform.PlanSummary]], bool]


@dataclass
class DeployResult:
    env: str
    release: str
    changed: bool  # a new release was made current
    plans: list[terraform.PlanSummary] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    uploaded: int = 0
    instances: dict[str, dict] = field(default_factory=dict)  # instance id → its report
    pending: list[str] = field(default_factory=list)  # plan only: stacks waiting for others
    diffs: dict[str, str] = field(default_factory=dict)  # plan only: role/file → unified diff
    rollout: dict | None = None  # the rollout's state: waves, previous release per role, outcome
    permissions: dict[str, list[str]] = field(default_factory=dict)  # role → AWS grants beyond damso's own

    @property
    def healthy(self) -> bool:
        return releases.all_healthy(self.instances, self.release)

    def to_dict(self) -> dict:
        return {
            "env": self.env,
            "release": self.release,
            "changed": self.changed,
            "stacks": {p.stack: {"changes": p.counts(), "applied": p.stack in self.applied, "planned": not p.skipped}
                       for p in self.plans},  # fmt: skip
            "uploaded": self.uploaded,
            "healthy": self.healthy,
            "instances": self.instances,
            "pending": self.pending,
            "diffs": self.diffs,
            "rollout": self.rollout,
            "permissions": self.permissions,
        }


# ---- shared steps -------------------------------------------------------------------


def _secrets(target: Target, request: DeployRequest, on_event: Event, dry_run: bool) -> list[str]:
    done = ensure_secrets(target.aws.client("ssm"), target.env_name, target.env, target.state_dir, request.roles, dry_run)
    if done:
        on_event("secrets", f"{'would store' if dry_run else 'stored'} in SSM: {', '.join(done)}")
    return done


def _plan_group(target: Target, ws: workspace.Workspace, group: list[str], outputs: dict, jobs: int, on_event: Event,
                lock: bool, etags: dict[str, str | None] | None = None) -> list[terraform.PlanSummary]:  # fmt: skip
    """Plan stacks in parallel, their inputs from `outputs` (the stacks they depend on).
    etags (stack → its state object's ETag): a stack whose code, inputs and state are as at its
    last clean plan is not planned again (stackops.unchanged)."""
    by_stack = stacks.roles_by_stack(target.env)
    user_data = {}
    if "shared" in outputs:
        bucket = outputs["shared"]["artifact_bucket"]
        for stack in [s for s in group if s in by_stack]:
            name, role = by_stack[stack]
            user_data[name] = render.render_user_data(target.cfg, target.env_name, name, role, bucket,
                                                      aws_endpoint=target.aws.endpoint_url)  # fmt: skip
    values = {s: stacks.inputs(target.cfg, target.env_name, s, outputs, user_data) for s in group}
    todo = [s for s in group if etags is None or not stackops.unchanged(ws, s, values[s], etags.get(s))]
    for stack in todo:  # init rewrites the shared provider cache: never while a plan of this group reads it
        stackops.init(ws, stack)
    planned = dict(zip(todo, stackops.parallel(lambda s: stackops.plan(ws, s, values[s], lock=lock), todo, jobs)))
    plans = [planned[s] if s in planned else terraform.PlanSummary(s, (), skipped=True) for s in group]
    for p in plans:
        on_event("planned", f"{p.stack}: {p.text()}")
    return plans


@dataclass(frozen=True)
class Snapshot:
    """Every stack planned at once, and the state (ETags) the plans were made from."""

    outputs: dict
    plans: list
    etags: dict


def _states(target: Target, names: list[str], jobs: int) -> dict[str, tuple[dict | None, str | None]]:
    s3 = target.aws.client("s3")
    found = stackops.parallel(lambda s: stackops.read_state(s3, target.state_bucket, target.env_name, s), names, jobs)
    return dict(zip(names, found))


def _at_once(target: Target, request: DeployRequest, ws: workspace.Workspace, jobs: int, on_event: Event,
             lock: bool, refresh: bool) -> Snapshot | None:  # fmt: skip
    """Every stack planned in one parallel group, the inputs from the state of the stacks they
    depend on: right as long as none of those changes. None (plan layer by layer) when a stack
    has no state yet or a stack that others depend on has changes. Without refresh, a stack
    unchanged since its last clean plan is not planned; a plan without changes is remembered."""
    names = list(request.stacks)
    states = _states(target, names, jobs)
    known = {s: outputs for s, (outputs, _) in states.items()}
    if not all(known.values()):
        return None
    etags = {s: etag for s, (_, etag) in states.items()}
    on_event("plan", f"{', '.join(names)} (at once: each stack's inputs from the state of those it depends on)")
    plans = _plan_group(target, ws, names, known, jobs, on_event, lock, etags=None if refresh else etags)
    for p in plans:
        if p.empty and not p.skipped:
            stackops.remember_clean(ws, p.stack, etags[p.stack])
    upstream = [p.stack for p in plans if not p.empty and any(p.stack in stacks.depends(s) for s in names)]
    if upstream:
        on_event("plan", f"{', '.join(upstream)} would change, and other stacks depend on it: planning layer by layer")
        return None
    return Snapshot(known, plans, etags)


def _layers(target: Target, request: DeployRequest, ws: workspace.Workspace, outputs: dict, jobs: int,
            on_event: Event, lock: bool) -> Iterator[tuple[list[str], list[terraform.PlanSummary]]]:  # fmt: skip
    """Plan the stacks layer by layer; the caller applies a layer's changes (or stops) before
    the next is planned. Fills `outputs` (stack → its outputs) as layers complete."""
    for layer in stacks.layers(list(request.stacks)):
        on_event("plan", ", ".join(layer))
        yield layer, _plan_group(target, ws, layer, outputs, jobs, on_event, lock)
        for stack, out in zip(layer, stackops.parallel(lambda s: stackops.outputs(ws, s), layer, jobs)):
            outputs[stack] = out


def _apply(ws: workspace.Workspace, plans: list[terraform.PlanSummary], confirm: Confirm, on_event: Event,
           jobs: int, target: Target | None = None) -> list[str]:  # fmt: skip
    """Apply the plans that have changes, once confirm() says yes; return the stacks applied.
    With target (inside its lock), an apply blocked by its own Terraform lock recovers (stackops.apply)."""
    changed = [p for p in plans if not p.empty]
    if not changed:
        return []
    if not confirm(changed):
        raise DamsoError(
            f"Nothing applied: {', '.join(p.stack for p in changed)} would change and the change was not confirmed.",
            hint="Pass --yes to apply without asking.",
        )
    on_event("apply", ", ".join(p.stack for p in changed))
    recover = None
    if target is not None:
        def recover(stack: str, since) -> dict | None:
            removed = lock.remove_own_tflock(target.aws.client("s3"), target.state_bucket, target.env_name, stack, since)
            if removed:
                on_event("apply", f"{stack}: removed Terraform's lock left by this apply's own lost write; applying again")
            return removed

    stackops.parallel(lambda p: stackops.apply(ws, p.stack, recover), changed, jobs)
    return [p.stack for p in changed]


def _release(target: Target, request: DeployRequest, outputs: dict, store: ReleaseStore) -> releases.Release:
    """Render the selected roles; with --only, the others keep their files from the current release."""
    env = target.env
    jenv = render.template_env(target.cfg)
    hooks = livekit_keys.webhook_urls(env, store.added_webhooks()) if livekit_keys.ROLE in request.roles else []
    files = {
        r: render.render_files(target.cfg, target.env_name, r, env.roles[r], request.images, outputs, store.bucket, jenv, hooks)
        for r in request.roles
    }
    image_info = request.image_info()
    others = [r for r in env.roles if r not in request.roles]
    if others:
        current = store.current()
        previous = store.manifest(current["release"]) if current else None
        if not previous:
            raise UsageError(f"--only needs an earlier release of {target.env_name} to take {', '.join(others)} from; "
                             "deploy everything first.")  # fmt: skip
        for r in others:
            if r in previous["roles"]:
                files[r] = store.role_files(current["release"], r, previous["roles"][r])
        image_info = {**previous.get("images", {}), **image_info}
    ssm = target.aws.client("ssm")
    settings = {r: {"health_timeout": env.roles[r].health_timeout,
                    "secrets": secrets.fingerprint(ssm, target.env_name, r)} for r in env.roles}  # fmt: skip
    return releases.make(target.env_name, files, image_info, target.cfg.registry.host, request.build.id, settings)


def _permissions(target: Target, request: DeployRequest) -> dict[str, list[str]]:
    """What each role's instance may do in AWS beyond damso's own (roles.<role>.aws)."""
    return {r: target.env.roles[r].aws.lines() for r in request.roles if target.env.roles[r].aws.lines()}


def _hosts(target: Target, request: DeployRequest, outputs: dict) -> dict[str, list[str]]:
    """role → its instance ids (a role with count > 1 has several)."""
    by_stack = stacks.roles_by_stack(target.env)
    return {by_stack[s][0]: list(outputs[s].get("instance_ids") or [outputs[s]["instance_id"]])
            for s in request.stacks if s in by_stack}  # fmt: skip


# ---- plan ---------------------------------------------------------------------------


def plan(target: Target, request: DeployRequest, *, on_event: Event, jobs: int = 4) -> DeployResult:
    """What a deploy would change: Terraform plans and file diffs. Nothing is applied,
    uploaded, stored or pointed. Stacks that depend on a changing stack are listed as pending."""
    _secrets(target, request, on_event, dry_run=True)
    if not target.bucket_exists(target.state_bucket):
        raise DamsoError(f"{target.env_name} was never deployed (no state bucket {target.state_bucket}); nothing to compare with.",
                         hint=f"Run 'damso deploy {target.env_name}'.")  # fmt: skip
    ws = workspace.prepare(target.state_dir, target.env_name, target.aws, target.state_bucket, list(request.stacks))
    result = DeployResult(target.env_name, "", False, permissions=_permissions(target, request))
    fast = _at_once(target, request, ws, jobs, on_event, lock=True, refresh=True)  # every stack: changes made outside show
    if fast:
        outputs, result.plans = fast.outputs, fast.plans
    else:
        outputs, result.plans = {}, []
    for layer, plans in [] if fast else _layers(target, request, ws, outputs, jobs, on_event, lock=True):
        result.plans += plans
        changed = [p.stack for p in plans if not p.empty]
        pending = [s for s in request.stacks if s not in layer and s not in outputs]
        if changed and pending:
            result.pending = pending
            on_event("plan", f"{', '.join(pending)} can be planned once {', '.join(changed)} is applied")
            return result
    store = target.store(outputs["shared"]["artifact_bucket"])
    release = _release(target, request, outputs, store)
    result.release = release.id
    result.diffs = releases.diff(store, store.current(), release)
    return result


# ---- deploy -------------------------------------------------------------------------


def deploy(
    target: Target,
    request: DeployRequest,
    *,
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
    """Apply what changed, release, roll it out wave by wave (deploy/rollout.py). Run inside the env's lock.
    rollback None: the environment's setting. snapshot: plans made before the lock was taken, used
    when no stack's state has changed since (Terraform refuses to apply a stale plan anyway).
    refresh: plan every stack, even those unchanged since their last clean plan."""
    _secrets(target, request, on_event, dry_run=False)
    if target.ensure_state_bucket():
        on_event("state", f"created state bucket {target.state_bucket}")
    ws = workspace.prepare(target.state_dir, target.env_name, target.aws, target.state_bucket, list(request.stacks))
    result = DeployResult(target.env_name, "", False)
    current = {s: etag for s, (_, etag) in _states(target, list(request.stacks), jobs).items()} if snapshot else None
    fast = snapshot if snapshot and current == snapshot.etags else _at_once(target, request, ws, jobs, on_event,
                                                                            lock=False, refresh=refresh)  # fmt: skip
    if fast:
        outputs, result.plans = dict(fast.outputs), list(fast.plans)
        result.applied = _apply(ws, result.plans, confirm, on_event, jobs, target)
        for stack, out in zip(result.applied, stackops.parallel(lambda s: stackops.outputs(ws, s), result.applied, jobs)):
            outputs[stack] = out
        _remember(target, ws, result.applied, jobs)
    else:
        outputs = {}
        for _, plans in _layers(target, request, ws, outputs, jobs, on_event, lock=False):
            result.plans += plans
            result.applied += _apply(ws, plans, confirm, on_event, jobs, target)
        _remember(target, ws, [p.stack for p in result.plans], jobs)  # applied or without changes

    group = (outputs.get("data") or {}).get("redis_replication_group_id")
    if group and not target.aws.emulated:  # the emulator makes no replication group
        done = redis.ensure_auth(target.aws.client("elasticache"), target.aws.client("ssm"), target.env_name, target.env,
                                 group, on_event)  # fmt: skip
        if done:
            on_event("secrets", f"stored: {', '.join(done)}")
    store = target.store(outputs["shared"]["artifact_bucket"])
    release = _release(target, request, outputs, store)
    hosts = _hosts(target, request, outputs)
    settled = rollout.settled(store, release.content, request.roles)
    if settled:
        result.release = settled
        on_event("release", f"{settled} is current and unchanged; nothing uploaded")
        result.instances = _settled_health(target, store, settled, hosts, converge_local=converge_local, wait=wait,
                                           timeout=timeout, on_event=on_event)  # fmt: skip
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


def _remember(target: Target, ws: workspace.Workspace, names: list[str], jobs: int) -> None:
    """These stacks match their state now (applied, or planned without changes, under damso's lock)."""
    for stack, (_, etag) in _states(target, names, jobs).items():
        stackops.remember_clean(ws, stack, etag)


def _settled_health(target: Target, store: ReleaseStore, release: str, hosts: dict[str, list[str]], *,
                    converge_local: bool, wait: bool, timeout: float | None, on_event: Event) -> dict:  # fmt: skip
    """Nothing to move: when every host already reports the release healthy (and, on AWS, recently),
    there is nothing to wait for either; otherwise converge (sandbox) and wait as usual."""
    found = _healthy_now(target, store, release, hosts)
    if found is not None:
        on_event("health", f"every instance already reports {release} healthy; not waiting")
        return found
    return converge.converge_and_wait(target, store, release, hosts, converge_local=converge_local, wait=wait,
                                      timeout=timeout, on_event=on_event)  # fmt: skip


FRESH = 300  # seconds: hosts report every minute


def _healthy_now(target: Target, store: ReleaseStore, release: str, hosts: dict[str, list[str]]) -> dict | None:
    """Every host's report when each runs `release` healthy (and, on AWS, reported recently); else None."""
    reports = store.reports()
    found = {i: reports.get(i, {}) for instances in hosts.values() for i in instances}
    fresh = target.aws.emulated or all(_age(r) < FRESH for r in found.values())
    return found if found and fresh and releases.all_healthy(found, release) else None


def _age(report: dict) -> float:
    try:
        return (datetime.now(timezone.utc) - datetime.fromisoformat(report["time"])).total_seconds()
    except (KeyError, TypeError, ValueError):
        return float("inf")


def check(target: Target, request: DeployRequest) -> list[str]:
    """The checks that need AWS but change nothing (secrets, LiveKit keys): run before the lock
    and its state bucket are made, so a missing secret still creates nothing. Returns the
    secrets a deploy would store."""
    return _secrets(target, request, lambda phase, message: None, dry_run=True)


def locked_deploy(target: Target, request: DeployRequest, *, command: str = "deploy", lock_timeout: float = 0,
                  on_event: Event, **options) -> DeployResult:  # fmt: skip
    """The sequence every roll-out uses (deploy, livekit up, webhook changes): check what needs
    AWS but changes nothing; look whether anything is to be done at all (if not, nothing is
    written, not even the lock); take the environment's lock, deploy, release the lock."""
    to_store = check(target, request)
    ahead = _look_ahead(target, request, on_event, options.get("jobs", 4), options.get("refresh", False), to_store)
    if isinstance(ahead, DeployResult):
        return ahead
    with lock.for_target(target, command, timeout=lock_timeout, on_event=on_event):
        return deploy(target, request, on_event=on_event, snapshot=ahead, **options)


def _look_ahead(target: Target, request: DeployRequest, on_event: Event, jobs: int, refresh: bool,
                to_store: list[str]) -> DeployResult | Snapshot | None:  # fmt: skip
    """Without the lock and writing nothing: plan every stack at once. A DeployResult when nothing
    is to be done (no plan changes, no secret `to_store`, the release settled and every host
    reporting it healthy); else the plans, for the deploy to use if no state changes meanwhile."""
    if not target.bucket_exists(target.state_bucket) or lock.read(target.aws.client("s3"), target.state_bucket, target.env_name):
        return None
    ws = workspace.prepare(target.state_dir, target.env_name, target.aws, target.state_bucket, list(request.stacks))
    snapshot = _at_once(target, request, ws, jobs, on_event, lock=False, refresh=refresh)
    if snapshot is None or to_store or any(not p.empty for p in snapshot.plans):
        return snapshot
    store = target.store(snapshot.outputs["shared"]["artifact_bucket"])
    release = _release(target, request, snapshot.outputs, store)
    settled = rollout.settled(store, release.content, request.roles)
    hosts = _hosts(target, request, snapshot.outputs)
    reports = _healthy_now(target, store, settled, hosts) if settled else None
    if reports is None:
        return snapshot
    on_event("release", f"{settled} is current and unchanged; nothing uploaded")
    on_event("health", f"every instance already reports {settled} healthy; not waiting (nothing was written, not even the lock)")
    return DeployResult(target.env_name, settled, False, plans=list(snapshot.plans), instances=reports)
