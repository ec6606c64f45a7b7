"""Terraform for one environment, in one place.

Every command that plans, applies or destroys stacks (deploy, plan, destroy, livekit up and
down, dev gpu start) goes through a Planner: working copies and init, plans at once or layer
by layer, the skip of stacks unchanged since their last clean plan, confirmation, apply,
outputs (StackOutputs) and destroy. `locked` is the only code that takes an environment's
lock, and a Planner applies only under it. Other modules never import stackops, workspace
or terraform (a test enforces it).

When plans take which lock:
- `damso plan`: damso's lock is not taken; plans keep Terraform's own lock (-lock-timeout).
- `damso deploy` (and livekit up, webhook changes): a look-ahead before damso's lock plans
  every stack at once with -lock=false and writes nothing. Once damso's lock is held, those
  plans are used only if every stack's state object still has the ETag they were made from;
  otherwise the stacks are planned again, inside the lock, also with -lock=false (no other
  damso can apply meanwhile; Terraform refuses to apply a stale plan anyway).
- `damso deploy --yes` (every change approved ahead, `approves_all`): a stack with no state yet
  is not planned on its own; one `terraform apply -auto-approve` plans and applies it, with
  Terraform's lock, and its changes are shown once made.
- destroy (confirmed before anything is planned): each stack planned and destroyed by one
  `terraform apply -destroy -auto-approve` inside damso's lock, with Terraform's lock.
- dev gpu start: plan and apply inside damso's lock, plans with Terraform's lock.
Applies always take Terraform's lock too, so a hand-run terraform and damso exclude each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from damso_ops.concurrency import parallel
from damso_ops.deploy import lock, render, stackops, stacks, terraform, tflocks, workspace
from damso_ops.deploy.outputs import StackOutputs, read_state
from damso_ops.deploy.target import Target
from damso_ops.errors import DamsoError

PlanSummary = terraform.PlanSummary
Event = Callable[[str, str], None]  # (phase, message)
Confirm = Callable[[list[PlanSummary]], bool]
find_mirror, terraform_version = terraform.find_mirror, terraform.version  # for damso doctor


def _ignore(phase: str, message: str) -> None:
    pass


def approves_all(confirm: Confirm) -> bool:
    """confirm says yes to every change without asking (--yes: cli.common.confirm_plans marks it
    so). A deploy then plans and applies each stack that has no state yet in one run."""
    return getattr(confirm, "approves_all", False) is True


@contextmanager
def locked(target: Target, command: str, *, timeout: float = 0, on_event: Event = _ignore,
           create: bool = True) -> Iterator[lock.Lock | None]:  # fmt: skip
    """The environment's lock, in its state bucket (created if missing), for `command`
    (deploy, rollback, destroy, livekit up, dev gpu start...). With create=False and no state
    bucket (nothing ever deployed), nothing is locked and None is yielded."""
    if not create and not target.bucket_exists(target.state_bucket):
        yield None
        return
    if target.ensure_state_bucket():
        on_event("state", f"created state bucket {target.state_bucket}")
    with lock.held(target.aws.client("s3"), target.state_bucket, target.env_name, command, timeout=timeout,
                   on_event=on_event) as held:  # fmt: skip
        yield held


@dataclass(frozen=True)
class Snapshot:
    """Every stack planned at once, and the state (ETags) the plans were made from."""

    outputs: StackOutputs
    plans: list[PlanSummary]
    etags: dict[str, str | None]


@dataclass
class Applied:
    """What planning and applying every stack left: outputs, plans, the stacks applied."""

    outputs: StackOutputs
    plans: list[PlanSummary]
    applied: list[str]


class Planner:
    """The stacks `names` of one environment. `held` (from `locked`) allows applies."""

    def __init__(self, target: Target, names: list[str], on_event: Event = _ignore, *, jobs: int = 4,
                 held: lock.Lock | None = None):  # fmt: skip
        self.target, self.names, self.on_event, self.jobs, self.held = target, list(names), on_event, jobs, held
        self.ws = workspace.prepare(target.state_dir, target.env_name, target.aws, target.state_bucket, self.names)

    # ---- state, read without Terraform ----------------------------------------------

    def states(self, names: list[str] | None = None) -> dict[str, tuple[dict | None, str | None]]:
        """stack → (its outputs or None, its state object's ETag), from the state bucket."""
        names = self.names if names is None else names
        s3, t = self.target.aws.client("s3"), self.target
        return dict(zip(names, parallel(lambda s: read_state(s3, t.state_bucket, t.env_name, s), names, self.jobs)))

    def etags(self) -> dict[str, str | None]:
        return {s: etag for s, (_, etag) in self.states().items()}

    def remember(self, states: dict[str, tuple[dict | None, str | None]]) -> None:
        """These stacks (their states as self.states() read them after their applies) match their
        state now (applied, or planned without changes, under damso's lock)."""
        for stack, (_, etag) in states.items():
            stackops.remember_clean(self.ws, stack, etag)

    def _read_after(self, names: list[str], outputs: StackOutputs) -> dict[str, tuple[dict | None, str | None]]:
        """These stacks' states as read now (see states()), their outputs put into `outputs`."""
        after = self.states(names)
        for stack, (out, _) in after.items():
            outputs.put(stack, out or {})
        return after

    # ---- plans ------------------------------------------------------------------------

    def _inputs(self, group: list[str], outputs: StackOutputs) -> dict[str, dict]:
        target, by_stack = self.target, stacks.roles_by_stack(self.target.env)
        user_data = {}
        if "shared" in outputs:
            for stack in [s for s in group if s in by_stack]:
                name, role = by_stack[stack]
                user_data[name] = render.render_user_data(target.cfg, target.env_name, name, role, outputs.artifact_bucket,
                                                          aws_endpoint=target.aws.endpoint_url)  # fmt: skip
        return {s: stacks.inputs(target.cfg, target.env_name, s, outputs, user_data) for s in group}

    def plan_group(self, group: list[str], outputs: StackOutputs, *, lock: bool,
                   etags: dict[str, str | None] | None = None) -> list[PlanSummary]:  # fmt: skip
        """Plan stacks in parallel, their inputs from `outputs`. etags (stack → its state's ETag):
        a stack whose code, inputs and state are as at its last clean plan is not planned again."""
        values = self._inputs(group, outputs)
        todo = [s for s in group if etags is None or not stackops.unchanged(self.ws, s, values[s], etags.get(s))]
        for stack in todo:  # init rewrites the shared provider cache: never while a plan of this group reads it
            stackops.init(self.ws, stack)
        planned = dict(zip(todo, parallel(lambda s: stackops.plan(self.ws, s, values[s], lock=lock), todo, self.jobs)))
        plans = [planned[s] if s in planned else PlanSummary(s, (), skipped=True) for s in group]
        for p in plans:
            self.on_event("planned", f"{p.stack}: {p.text()}")
        return plans

    def at_once(self, *, lock: bool, refresh: bool) -> Snapshot | None:
        """Every stack planned in one parallel group, the inputs from the state of the stacks they
        depend on: right as long as none of those changes. None (plan layer by layer) when a stack
        has no state yet or a stack that others depend on has changes. Without refresh, a stack
        unchanged since its last clean plan is not planned; a plan without changes is remembered."""
        states = self.states()
        if not all(out for out, _ in states.values()):
            return None
        known = StackOutputs({s: out for s, (out, _) in states.items()})
        etags = {s: etag for s, (_, etag) in states.items()}
        self.on_event("plan", f"{', '.join(self.names)} (at once: each stack's inputs from the state of those it depends on)")
        plans = self.plan_group(self.names, known, lock=lock, etags=None if refresh else etags)
        for p in plans:
            if p.empty and not p.skipped:
                stackops.remember_clean(self.ws, p.stack, etags[p.stack])
        upstream = [p.stack for p in plans if not p.empty and any(p.stack in stacks.depends(s) for s in self.names)]
        if upstream:
            self.on_event("plan", f"{', '.join(upstream)} would change, and other stacks depend on it: planning layer by layer")
            return None
        return Snapshot(known, plans, etags)

    def layers(self, outputs: StackOutputs, *, lock: bool, read: dict | None = None,
               unplanned: Callable[[list[str], StackOutputs], list[PlanSummary]] | None = None,
               ) -> Iterator[tuple[list[str], list[PlanSummary]]]:  # fmt: skip
        """Plan layer by layer; the caller applies a layer's changes (or stops) before the next
        is planned. Fills `outputs` as layers complete, and `read` (when given) with each stack's
        state as read then (see states()). unplanned(stacks, outputs) → their plans: called, instead
        of planning them, for the stacks of a layer that have no state yet (apply_all)."""
        for layer in stacks.layers(self.names):
            self.on_event("plan", ", ".join(layer))
            new = [s for s, (_, etag) in self.states(layer).items() if etag is None] if unplanned else []
            by_stack = {p.stack: p for p in self.plan_group([s for s in layer if s not in new], outputs, lock=lock)}
            if new:
                by_stack.update({p.stack: p for p in unplanned(new, outputs)})
            yield layer, [by_stack[s] for s in layer]
            after = self._read_after(layer, outputs)
            if read is not None:
                read.update(after)

    def preview(self) -> tuple[StackOutputs, list[PlanSummary], list[str]]:
        """`damso plan`: (outputs, plans, pending): every stack planned, refreshed; when a layer would
        change, the stacks after it cannot be planned yet and are pending."""
        fast = self.at_once(lock=True, refresh=True)  # every stack: changes made outside show
        if fast:
            return fast.outputs, fast.plans, []
        outputs, plans = StackOutputs(), []
        for layer, planned in self.layers(outputs, lock=True):
            plans += planned
            changed = [p.stack for p in planned if not p.empty]
            pending = [s for s in self.names if s not in layer and s not in outputs]
            if changed and pending:
                self.on_event("plan", f"{', '.join(pending)} can be planned once {', '.join(changed)} is applied")
                return outputs, plans, pending
        return outputs, plans, []

    # ---- applies (under damso's lock) -------------------------------------------------

    def _require_lock(self) -> None:
        if self.held is None:
            raise RuntimeError("A Planner applies only under the environment's lock (planning.locked).")

    def apply(self, plans: list[PlanSummary], confirm: Confirm) -> list[str]:
        """Apply the plans that have changes, once confirm() says yes; the stacks applied.
        An apply blocked by Terraform's lock left by its own lost write recovers (stackops.apply)."""
        self._require_lock()
        changed = [p for p in plans if not p.empty]
        if not changed:
            return []
        if not confirm(changed):
            raise DamsoError(
                f"Nothing applied: {', '.join(p.stack for p in changed)} would change and the change was not confirmed.",
                hint="Pass --yes to apply without asking.",
            )
        self.on_event("apply", ", ".join(p.stack for p in changed))
        parallel(lambda p: stackops.apply(self.ws, p.stack, self._recover), changed, self.jobs)
        return [p.stack for p in changed]

    def _recover(self, stack: str, since) -> dict | None:
        """stackops' Recover: Terraform's lock on `stack` removed when this very apply left it."""
        t = self.target
        removed = tflocks.remove_own(t.aws.client("s3"), t.state_bucket, t.env_name, stack, since, lock.holder_name())
        if removed:
            self.on_event("apply", f"{stack}: removed Terraform's lock left by this apply's own lost write; applying again")
        return removed

    def apply_approved(self, group: list[str], outputs: StackOutputs, confirm: Confirm) -> list[PlanSummary]:
        """Stacks with no state yet, every change approved ahead (approves_all): each planned and
        applied in one run (stackops.apply_approved), in parallel, its inputs from `outputs`; then
        confirm, which asks nothing, is shown the changes made, as it is shown a plan's."""
        self._require_lock()
        values = self._inputs(group, outputs)
        for stack in group:  # init rewrites the shared provider cache: one at a time, as plan_group does
            stackops.init(self.ws, stack)
        self.on_event("apply", f"{', '.join(group)} (no state yet: planned and applied in one run, approved ahead)")
        plans = parallel(lambda s: stackops.apply_approved(self.ws, s, values[s], self._recover), group, self.jobs)
        for p in plans:
            self.on_event("planned", f"{p.stack}: {p.text()}")
        if any(not p.empty for p in plans):
            confirm([p for p in plans if not p.empty])
        return plans

    def apply_all(self, confirm: Confirm, *, snapshot: Snapshot | None = None, refresh: bool = False) -> Applied:
        """Plan and apply every stack: at once from `snapshot` (plans made before the lock, used
        when no state changed since) or a new at-once plan, else layer by layer."""
        self._require_lock()
        fast = snapshot if snapshot and self.etags() == snapshot.etags else self.at_once(lock=False, refresh=refresh)
        if fast:
            outputs, plans = StackOutputs(fast.outputs), list(fast.plans)
            applied = self.apply(plans, confirm)
            self.remember(self._read_after(applied, outputs))
            return Applied(outputs, plans, applied)
        outputs, plans, applied, read, created = StackOutputs(), [], [], {}, []

        def create(new: list[str], known: StackOutputs) -> list[PlanSummary]:
            done = self.apply_approved(new, known, confirm)
            created.extend(p.stack for p in done if not p.empty)
            return done

        unplanned = create if approves_all(confirm) else None
        for layer, planned in self.layers(outputs, lock=False, read=read, unplanned=unplanned):
            plans += planned
            done = self.apply([p for p in planned if p.stack not in created], confirm)
            applied += [s for s in layer if s in done or s in created]
        self.remember(read)  # every stack planned: applied or without changes
        return Applied(outputs, plans, applied)

    def ensure(self, stack: str, confirm: Confirm) -> tuple[PlanSummary, bool, dict]:
        """One stack whose dependencies exist: plan it, apply it if it has changes (confirm sees
        the plan), return (the plan, applied, its outputs)."""
        self._require_lock()
        known = StackOutputs({s: out for s, (out, _) in self.states(list(stacks.depends(stack))).items() if out})
        self.on_event("plan", stack)
        (plan,) = self.plan_group([stack], known, lock=True)
        applied = self.apply([plan], confirm) == [stack]
        return plan, applied, self.states([stack])[stack][0] or {}

    def destroy(self, order: list[str]) -> list[str]:
        """Destroy stacks in `order` (dependents first). Each one's inputs come from the state of
        the stacks still there, read before anything is destroyed; a stack that another stack
        still standing depends on is refused first, naming that stack."""
        self._require_lock()
        states = self.states(stacks.stack_names(self.target.env_name, self.target.env))
        known = StackOutputs({s: out for s, (out, _) in states.items() if out is not None})
        standing = [s for s in known if s not in order]
        for stack in order:
            users = [s for s in standing if stack in stacks.depends(s)]
            if stack in known and users:
                raise DamsoError(f"{stack} cannot be destroyed while {', '.join(users)} still depends on it.",
                                 hint=f"Destroy the whole environment: 'damso destroy {self.target.env_name}'.")  # fmt: skip
        no_user_data = {name: "" for name in self.target.env.roles}  # a destroy plan does not depend on it
        destroyed = []
        for layer in reversed(stacks.layers(order)):  # a layer's stacks depend on none of each other: at once
            todo = []
            for stack in [s for s in order if s in layer]:
                if stack not in known or (stack != "shared" and "shared" not in known):  # never applied, or destroyed
                    self.on_event("destroy", f"{stack}: nothing to destroy")
                else:
                    stackops.init(self.ws, stack)  # one at a time: an init rewrites the shared provider cache
                    todo.append(stack)
            values = {s: stacks.inputs(self.target.cfg, self.target.env_name, s, known, no_user_data) for s in todo}
            # confirmed before anything was planned: each stack planned and destroyed in one run
            plans = parallel(lambda s: stackops.apply_approved(self.ws, s, values[s], destroy=True), todo, len(todo))
            for p in plans:
                self.on_event("destroy", f"{p.stack}: {'nothing to destroy' if p.empty else p.text()}")
            destroyed += [p.stack for p in plans if not p.empty]
        return destroyed
