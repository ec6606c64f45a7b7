"""Stack outputs: what the stacks of an environment gave back, typed, and read from their
state objects in the state bucket without Terraform (no init, no plugin)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping

from damso_ops.deploy.store import Layout
from damso_ops.errors import DamsoError


class StackOutputs(Mapping[str, Mapping[str, object]]):
    """stack → its outputs (the values `terraform output -json` would give), with named accessors for
    what damso itself reads. A Mapping, so templates' ${stack.output} references and stack
    inputs index it as before; only stacks that were read or applied are in it."""

    def __init__(self, by_stack: Mapping[str, Mapping[str, object]] | None = None):
        self._by_stack: dict[str, Mapping[str, object]] = dict(by_stack or {})

    def __getitem__(self, stack: str) -> Mapping[str, object]:
        return self._by_stack[stack]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_stack)

    def __len__(self) -> int:
        return len(self._by_stack)

    def __repr__(self) -> str:
        return f"StackOutputs({self._by_stack!r})"

    def put(self, stack: str, outputs: Mapping[str, object]) -> None:
        self._by_stack[stack] = outputs

    def _shared(self, name: str) -> str:
        try:
            return str(self._by_stack["shared"][name])
        except KeyError:
            raise DamsoError(f"The shared stack has no output '{name}' (was it applied?).") from None

    @property
    def artifact_bucket(self) -> str:
        return self._shared("artifact_bucket")

    @property
    def vpc_id(self) -> str:
        return self._shared("vpc_id")

    def instance_ids(self, stack: str) -> list[str]:
        """A role stack's instances: instance_ids when it has several (count > 1), else instance_id."""
        out = self._by_stack[stack]
        return list(out.get("instance_ids") or [out["instance_id"]])  # type: ignore[arg-type]

    @property
    def redis_replication_group(self) -> str | None:
        return (self._by_stack.get("data") or {}).get("redis_replication_group_id")  # type: ignore[return-value]


def read_state(s3, state_bucket: str, env: str, stack: str) -> tuple[dict | None, str | None]:
    """(a stack's outputs, the values `terraform output` would give, its state object's ETag), read from
    the state object; outputs None when never applied or destroyed."""
    key = Layout(env).state(stack)
    try:
        found = s3.get_object(Bucket=state_bucket, Key=key)
    except s3.exceptions.NoSuchKey:
        return None, None
    try:
        data = json.loads(found["Body"].read())
    except ValueError:
        raise DamsoError(f"The Terraform state s3://{state_bucket}/{key} is not JSON.") from None
    if not data.get("resources") and not data.get("outputs"):
        return None, found.get("ETag")  # destroyed
    outputs = data.get("outputs", {})
    for name, out in outputs.items():
        if out.get("sensitive"):
            raise DamsoError(f"Output '{name}' of the {stack} stack is sensitive; damso stacks must not output secrets.")
    return {name: out.get("value") for name, out in outputs.items()}, found.get("ETag")


def state_outputs(s3, state_bucket: str, env: str, stack: str) -> dict | None:
    return read_state(s3, state_bucket, env, stack)[0]
