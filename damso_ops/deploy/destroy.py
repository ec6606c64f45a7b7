"""damso destroy (and livekit down): an environment's stacks, or one role's, dependents first,
under the environment's lock (deploy/planning.py plans and applies the destroys)."""

from __future__ import annotations

from damso_ops.deploy import planning, stacks
from damso_ops.deploy.planning import Event
from damso_ops.deploy.request import selected_roles
from damso_ops.deploy.target import Target
from damso_ops.errors import DamsoError


def order(target: Target, only: list[str] | None) -> list[str]:
    """Stacks to destroy, dependents first."""
    names = stacks.stack_names(target.env_name, target.env)
    if only:
        names = [target.env.roles[r].stack_name(r) for r in selected_roles(target.env_name, target.env, only)]
    return [s for layer in reversed(stacks.layers(names)) for s in layer]


def destroy(target: Target, stack_order: list[str], on_event: Event, *, command: str = "destroy",
            lock_timeout: float = 0) -> list[str]:  # fmt: skip
    """Destroy stacks in order, under the environment's lock; the stacks destroyed."""
    bucket = target.state_bucket
    if not target.bucket_exists(bucket):
        raise DamsoError(f"{target.env_name} has no state bucket {bucket}: nothing to destroy.")
    with planning.locked(target, command, timeout=lock_timeout, on_event=on_event, create=False) as held:
        return planning.Planner(target, list(dict.fromkeys(["shared", *stack_order])), on_event, held=held).destroy(stack_order)
