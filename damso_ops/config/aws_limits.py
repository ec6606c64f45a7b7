"""What AWS would refuse that no single key of damso.toml shows: bucket and resource names made of
several keys, SSH open to everyone without saying so, zones and certificates of another region.
One function per concern; problems() runs them in a fixed order."""

from __future__ import annotations

import re

from damso_ops import values
from damso_ops.config.environment import Environment
from damso_ops.config.model import Config

Problems = list[tuple[str, str]]  # (key path, what is wrong)


def problems(cfg: Config) -> Problems:
    found = []
    project_problem = _bucket_problem(cfg.project.name, "e")  # the project's name alone, with the shortest environment name
    if project_problem:
        found.append(("project.name", f"{cfg.project.name!r} {project_problem}"))
    for env_name, env in cfg.environments.items():
        env_problem = None if project_problem else _bucket_problem(cfg.project.name, env_name)
        if env_problem:
            found.append((f"environments.{env_name}", f"with project.name {cfg.project.name!r} {env_problem}"))
        found += _ssh_cidrs(env_name, env)
        found += _zones(env_name, env)
        if not project_problem and not env_problem:
            found += _aws_names(cfg.project.name, env_name, env)
        found += _certificate_region(env_name, env)
    return found


def _bucket_problem(project: str, env_name: str) -> str | None:
    """Why S3 would refuse the longest bucket name damso makes for the environment, if it would."""
    bucket = f"{project}-{env_name}-artifacts-{'0' * 12}"
    why = values.bucket_rule(bucket)
    shown = bucket.replace("0" * 12, "ACCOUNT")
    return f"makes the bucket name {shown!r}, which S3 refuses: it {why}" if why else None


def _ssh_cidrs(env_name: str, env: Environment) -> Problems:
    """The environment's and each GPU dev box's ssh_cidrs: no duplicates, not open to all unless allowed."""
    where = f"environments.{env_name}"
    found = []
    owners = [(where, env.ssh_cidrs, env.allow_ssh_from_anywhere)]
    owners += [(f"{where}.gpu_dev.{n}", box.ssh_cidrs, box.allow_ssh_from_anywhere) for n, box in env.gpu_dev.items()]
    for owner, cidrs, allowed in owners:
        for cidr in sorted({c for c in cidrs if cidrs.count(c) > 1}):
            found.append((f"{owner}.ssh_cidrs", f"lists {cidr} more than once, which a security group refuses (InvalidPermission.Duplicate)"))
        if values.open_to_all(cidrs) and not allowed:
            found.append((f"{owner}.ssh_cidrs", f"{', '.join(values.open_to_all(cidrs))} opens SSH to the whole internet; "
                          f"list your own addresses, or set allow_ssh_from_anywhere = true in [{owner}]"))  # fmt: skip
    return found


def _zones(env_name: str, env: Environment) -> Problems:
    """Availability zones of the environment's region, each listed once."""
    where = f"environments.{env_name}.availability_zones"
    zones = list(env.availability_zones)
    found = [(where, problem) for problem in (values.availability_zone(zone, env.region) for zone in zones) if problem]
    found += [(where, f"lists {zone!r} more than once") for zone in sorted({z for z in zones if zones.count(z) > 1})]
    return found


def _aws_names(project: str, env_name: str, env: Environment) -> Problems:
    """Names the stacks give AWS resources, made of project, environment and role names, against
    AWS's limits for them (the longest of each kind)."""
    where = f"environments.{env_name}"
    made = [(f"{where}.roles.{r}", f"{project}-{env_name}-{r}", 64, r"[\w+=,.@-]+", "an IAM role name") for r in env.roles]
    if "edge" in env.stacks:
        suffix = "-livekit" if "livekit" in env.roles else "-alb"
        made.append((where, f"{project}-{env_name}{suffix}", 32, r"[A-Za-z0-9](-?[A-Za-z0-9])*", "a load balancer or target group name"))
    if "data" in env.stacks:
        made.append((where, f"{project}-{env_name}-redis", 40, r"[a-z](-?[a-z0-9])*", "an ElastiCache replication group id"))
    found = []
    for key, name, limit, chars, what in made:
        if len(name) > limit:
            found.append((key, f"makes {what} {name!r} of {len(name)} characters; AWS allows {limit} (shorten project.name or the names)"))
        elif not re.fullmatch(chars, name):
            found.append((key, f"makes {what} {name!r}, which AWS refuses (only letters, digits and single '-' there)"))
    return found


def _certificate_region(env_name: str, env: Environment) -> Problems:
    """The load balancer's certificate is one of its own region."""
    cert = values.ACM_ARN.match(env.certificate_arn)
    if cert and cert.group(2) != env.region:
        return [(f"environments.{env_name}.certificate_arn",
                 f"is a certificate of {cert.group(2)}; the load balancer in {env.region} needs one of {env.region}")]  # fmt: skip
    return []
