"""damso destroy: an environment's stacks (or one role's), dependents first."""

from __future__ import annotations

from collections.abc import Callable

from damso_ops.deploy import stackops, stacks, workspace
from damso_ops.deploy.request import selected_roles
from damso_ops.deploy.target import Target
from damso_ops.errors import DamsoError

Event = Callable[[str, str], None]


def order(target: Target, only: list[str] | None) -> list[str]:
    """Stacks to destroy, dependents first."""
    names = stacks.stack_names(target.env_name, target.env)
    if only:
        names = [target.env.roles[r].stack_name(r) for r in selected_roles(target.env_name, target.env, only)]
    return [s for layer in reversed(stacks.layers(names)) for s in layer]


def destroy(target: Target, stack_order: list[str], on_event: Event) -> list[str]:
    """Destroy stacks in order, the stacks of a layer at once (each one's inputs come from the
    remaining stacks' state)."""
    bucket = target.state_bucket
    if not target.bucket_exists(bucket):
        raise DamsoError(f"{target.env_name} has no state bucket {bucket}: nothing to destroy.")
    ws = workspace.prepare(target.state_dir, target.env_name, target.aws, bucket, ["shared", *stack_order])
    s3 = target.aws.client("s3")
    outputs = {}  # every remaining stack's outputs, read from its state: a stack's inputs come from those it depends on
    for stack in dict.fromkeys(["shared", *stacks.stack_names(target.env_name, target.env)]):
        found = stackops.state_outputs(s3, bucket, target.env_name, stack)
        if found is not None:
            outputs[stack] = found
    no_user_data = {name: "" for name in target.env.roles}  # a destroy plan does not depend on it
    destroyed = []
    for layer in reversed(stacks.layers(stack_order)):  # the stacks of a layer depend on none of each other: at once
        todo = []
        for stack in [s for s in stack_order if s in layer]:
            if stack not in outputs or not outputs.get("shared"):  # never applied or destroyed (without shared: every stack in its VPC)
                on_event("destroy", f"{stack}: nothing to destroy")
            else:
                stackops.init(ws, stack)  # one at a time: an init rewrites the shared provider cache
                todo.append(stack)
        values = {s: stacks.inputs(target.cfg, target.env_name, s, outputs, no_user_data) for s in todo}
        summaries = stackops.parallel(lambda s: stackops.plan(ws, s, values[s], destroy=True), todo, len(todo))
        changed = [p.stack for p in summaries if not p.empty]
        for summary in summaries:
            on_event("destroy", f"{summary.stack}: {'nothing to destroy' if summary.empty else summary.text()}")
        stackops.parallel(lambda s: stackops.apply(ws, s), changed, len(changed))
        destroyed += changed
    return destroyed
