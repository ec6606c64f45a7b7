"""What `damso plan` and `damso deploy` give back: one result type, rendered as text or --json."""

from __future__ import annotations

from dataclasses import dataclass, field

from damso_ops.deploy import releases
from damso_ops.deploy.planning import PlanSummary


@dataclass
class DeployResult:
    env: str
    release: str
    changed: bool  # a new release was made current
    plans: list[PlanSummary] = field(default_factory=list)
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
