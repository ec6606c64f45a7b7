"""damso.toml → validated, typed models. Every error names the file and the key path.

The package by concern: fields.py (shared value types), roles.py, steps.py (a role's release
tasks and secret files), environment.py and model.py (the models, from a role up to the whole file), checks.py and aws_limits.py (what keys together
get wrong), wording.py (errors as one sentence naming the key path), loading.py (find, read, parse).
Everything the rest of damso uses is importable from here."""

from damso_ops.config.environment import DEFAULT_ZONES, Data, Environment, GpuDevBox, LiveKit
from damso_ops.config.fields import HTTPS_URL, NAME_PATTERN, EnvVarName, Model, Name, PinnedImage
from damso_ops.config.loading import find, load, parse
from damso_ops.config.model import CONFIG_NAME, Config, Project, Registry, Repository, Service
from damso_ops.config.roles import DEFAULT_INSTANCE_TYPES, AwsAccess, IamStatement, Role
from damso_ops.config.steps import ReleaseTask, SecretFile
from damso_ops.errors import ConfigError

__all__ = [
    "CONFIG_NAME",
    "DEFAULT_INSTANCE_TYPES",
    "DEFAULT_ZONES",
    "HTTPS_URL",
    "NAME_PATTERN",
    "AwsAccess",
    "Config",
    "ConfigError",
    "Data",
    "EnvVarName",
    "Environment",
    "GpuDevBox",
    "IamStatement",
    "LiveKit",
    "Model",
    "Name",
    "PinnedImage",
    "Project",
    "Registry",
    "ReleaseTask",
    "Repository",
    "Role",
    "SecretFile",
    "Service",
    "find",
    "load",
    "parse",
]
