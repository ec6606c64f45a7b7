"""A role of an environment (one kind of host: its instance, containers and settings) and the AWS
access its own containers are granted."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints, model_validator

from damso_ops import values
from damso_ops.config.fields import Ami, EnvVarName, InstanceType, Model, Name, SecretName, _checked
from damso_ops.config.steps import ReleaseTask, SecretFile

DEFAULT_INSTANCE_TYPES = {"livekit": "c7i.xlarge"}


class IamStatement(Model):
    """An Allow statement for a role's instance: actions (service:Action) on resources."""

    actions: list[Annotated[str, _checked(values.iam_action_problem)]] = Field(
        min_length=1, description="service:Action; no iam:/sts: actions and no service:* (name the actions)"
    )
    resources: list[Annotated[str, _checked(values.iam_resource)]] = Field(min_length=1, description="ARNs or '*'")


class AwsAccess(Model):
    """What a role's own containers do with AWS beyond damso's reconcile unit (e.g. Bedrock for the api)."""

    managed_policies: list[Annotated[str, StringConstraints(pattern=r"^arn:aws[a-z-]*:iam::(aws|[0-9]{12}):policy/.+$")]] = Field(
        default=[], description="managed IAM policy ARNs attached to the role's instance"
    )
    statements: list[IamStatement] = Field(default=[], description="Allow statements scoped by resource")
    containers: bool = Field(
        default=False,
        description="the role's containers call AWS APIs with the instance's role: IMDS hop limit 2 (else 1: no container reaches it)",
    )

    @model_validator(mode="after")
    def _no_admin(self) -> "AwsAccess":
        bad = [a for a in self.managed_policies if a.rsplit("/", 1)[-1] in ("AdministratorAccess", "PowerUserAccess", "IAMFullAccess")]
        if bad:
            raise ValueError(f"{', '.join(bad)} would let a host take over the account; grant the actions it needs")
        return self

    def lines(self) -> list[str]:
        """One line per grant, as `damso plan` shows them."""
        found = [f"managed policy {arn}" for arn in self.managed_policies]
        found += [f"allow {', '.join(s.actions)} on {', '.join(s.resources)}" for s in self.statements]
        if self.containers:
            found.append("containers may use the instance role (IMDS hop limit 2)")
        return found


class Role(Model):
    """One kind of host in an environment: its instance, its containers, its settings."""

    stack: Name | None = Field(default=None, description="Terraform stack (default: the role's name)")
    instance_type: InstanceType = Field(default=None, description="default: c7i.xlarge for livekit, t3.small otherwise")
    ami: Ami = Field(default="", description="AMI id (required for the sandbox; lookups find nothing there)")
    volume_size: int = Field(default=20, ge=8, le=16384)
    services: list[Name] = Field(default=[], description="images this role runs, from the build manifest")
    compose_template: str | None = Field(default=None, description="default compose/<role>.yml.j2")
    health_timeout: int = Field(default=600, ge=10, le=86400)
    count: int = Field(default=1, ge=1, le=20, description="instances of this role, spread over the availability zones")
    drain_timeout: int = Field(
        default=300, ge=0, le=3600,
        description="the most seconds an instance behind the load balancer is drained before its containers are replaced",
    )  # fmt: skip
    stop_grace_period: str = Field(
        default="10s", pattern=r"^([0-9]+(us|ms|s|m|h))+$",
        description="how long each container has after SIGTERM before it is killed (compose syntax: 30s, 10m, 1m30s)",
    )  # fmt: skip
    env: dict[EnvVarName, str] = Field(default={}, description="non-secret settings; ${stack.output} references")
    secrets: list[SecretName] = Field(default=[], description="names only; values live in SSM")
    aws: AwsAccess = Field(default=AwsAccess(), description="AWS permissions of the role's own containers")
    tasks: list[ReleaseTask] = Field(default=[], description="one-shot steps run once per release before the services switch")
    secret_files: dict[SecretName, SecretFile] = Field(default={}, description="files from SSM, mounted read-only")

    def stack_name(self, role: str) -> str:
        return self.stack or role

    def instance_type_for(self, role: str) -> str:
        return self.instance_type or DEFAULT_INSTANCE_TYPES.get(role, "t3.small")
