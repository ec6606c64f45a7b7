"""The value types damso.toml's models share, and their frozen base: names, AWS values checked
the way AWS, Terraform, Docker or git would check them (see values.py), pinned images."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints

from damso_ops import credentials, values

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
HTTPS_URL = r"^https://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~%/-]*)?$"
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
EnvVarName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


def _checked(check) -> AfterValidator:
    """A value AWS, Terraform, Docker or git would refuse fails here, with the reason (see values.py)."""

    def validate(value):
        problem = None if value is None else check(value)
        if problem:
            raise ValueError(problem)
        return value

    return AfterValidator(validate)


Region = Annotated[str, _checked(values.region)]
InstanceType = Annotated[str | None, _checked(values.instance_type)]
Ami = Annotated[str, _checked(values.ami)]
Cidr = Annotated[str, _checked(values.ipv4_cidr)]
DnsName = Annotated[str, _checked(values.dns_name)]
CredentialVar = Annotated[str, _checked(credentials.env_var_name)]  # names a variable; never echoes a value typed in its place
SecretName = Annotated[str, _checked(credentials.secret_name)]


def _pinned(image: str) -> str:
    """An image reference Docker parses, with a version: a tag other than latest, or a digest."""
    problem = values.image_reference(image)
    if problem:
        raise ValueError(problem)
    parts = values.IMAGE_REFERENCE.match(image)
    if not parts.group("digest") and parts.group("tag") in (None, "latest"):
        raise ValueError(f"{image!r} must name a version (like livekit/livekit-server:v1.8.4 or an @sha256 digest), never latest")
    return image


PinnedImage = Annotated[str, AfterValidator(_pinned)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
