"""What a role runs besides its services: release tasks (one-shot steps per release) and secret
files (from SSM to the host, mounted read-only)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints, model_validator

from damso_ops.config.fields import Model, Name, _pinned


class ReleaseTask(Model):
    """A one-shot step of a role, run once per release on one of its hosts before its services switch
    (a schema migration): in one of the role's services' images or an explicit pinned one."""

    name: Name
    service: Name | None = Field(default=None, description="run in this service's image (one of the role's services)")
    image: str | None = Field(default=None, description="or this image, pinned (a tag other than latest, or a digest)")
    command: list[str] = Field(min_length=1, description='argv, e.g. ["npx", "prisma", "migrate", "deploy"]')
    timeout: int = Field(default=600, ge=10, le=86400, description="seconds before the task is killed and fails")

    @model_validator(mode="after")
    def _one_image(self) -> "ReleaseTask":
        if (self.service is None) == (self.image is None):
            raise ValueError("give service (one of the role's services) or image, exactly one of them")
        if self.image is not None:
            _pinned(self.image)
        return self


class SecretFile(Model):
    """A file whose content lives in SSM (/damso/<env>/<role>/files/<NAME>): written on the host
    (mode 0600, never in S3, user-data or state) and mounted read-only into the named containers."""

    path: Annotated[str, StringConstraints(pattern=r"^/[A-Za-z0-9._@/+-]*[A-Za-z0-9._@+-]$")] = Field(
        description="where the containers see the file, e.g. /secrets/apns-key.p8")
    services: list[Name] = Field(min_length=1, description="the compose services that mount it")
    uid: int = Field(default=0, ge=0, le=2**31 - 1, description="owner of the file on the host (a container user that is not root)")
