"""The top of damso.toml: the Config model (project, registry, repositories, services,
environments) and the lookups commands make on it (an environment, a set of services)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import Field, model_validator

from damso_ops import values
from damso_ops.config.environment import Environment
from damso_ops.config.fields import CredentialVar, EnvVarName, Model, Name, _checked
from damso_ops.errors import UsageError

CONFIG_NAME = "damso.toml"


class Project(Model):
    name: Name = "damso"


class Registry(Model):
    host: Annotated[str, _checked(values.host_port)] = Field(min_length=1, description="e.g. ghcr.io or 127.0.0.1:5000")
    namespace: Annotated[str, _checked(values.docker_path)] = Field(min_length=1, description="e.g. namanmoo-damso")
    username_env: CredentialVar = "GHCR_USERNAME"
    password_env: CredentialVar = Field(default="GHCR_TOKEN", description="the name of the variable holding the token, never the token")

    def image_repo(self, image: str) -> str:
        return f"{self.host}/{self.namespace}/{image}"


class Repository(Model):
    url: Annotated[str, _checked(values.git_url)] = Field(min_length=1)
    default_ref: Annotated[str, _checked(values.git_ref)] = "main"


class Service(Model):
    repo: Name
    image: Annotated[Name, _checked(values.docker_path)]
    context: str = "."
    dockerfile: str = "Dockerfile"
    build_args: dict[EnvVarName, str] = {}
    env_build_args: list[EnvVarName] = Field(
        default=[], description="build args whose values come from environments.<env>.build_args"
    )

    @model_validator(mode="after")
    def _context_inside_repo(self) -> "Service":
        for key in ("context", "dockerfile"):
            value = getattr(self, key)
            if value.startswith("/") or ".." in Path(value).parts:
                raise ValueError(f"{key} must be a path inside the repository, got {value!r}")
        return self


class Config(Model):
    project: Project = Project()
    registry: Registry
    repositories: dict[Name, Repository]
    services: dict[Name, Service]
    environments: dict[Name, Environment] = {}

    # Set by load(): where the file is; not part of the TOML.
    path: Path = Field(default=Path(CONFIG_NAME), exclude=True)

    @property
    def root(self) -> Path:
        return self.path.parent

    @property
    def state_dir(self) -> Path:
        override = os.environ.get("DAMSO_STATE_DIR")
        return Path(override) if override else self.root / ".damso"

    def environment(self, name: str) -> Environment:
        if not name.strip():
            known = ", ".join(sorted(self.environments)) or "none"
            raise UsageError(f"The environment name is empty (known: {known}).")
        if name not in self.environments:
            known = ", ".join(sorted(self.environments)) or "none"
            raise UsageError(
                f"Unknown environment '{name}' (known: {known}).",
                hint=f"Add [environments.{name}] to {self.path}.",
            )
        return self.environments[name]

    def select_services(self, names: list[str]) -> dict[str, Service]:
        if not names:
            return dict(self.services)
        unknown = [n for n in names if n not in self.services]
        if unknown:
            raise UsageError(
                f"Unknown service {', '.join(repr(n) for n in unknown)} "
                f"(known: {', '.join(sorted(self.services))})."
            )
        return {n: self.services[n] for n in names}
