"""Cross-checks: what no single key of damso.toml shows wrong, but keys together do (a secret
baked into an image, a service from an unknown repository, the edge stack without a domain,
waves that leave a role out, Redis without TLS, a role's settings its host would refuse).
One function per concern; problems() runs them in a fixed order, so the first problem, the one
an error leads with, stays the same."""

from __future__ import annotations

import re

from damso_ops import credentials
from damso_ops.config import aws_limits
from damso_ops.config.environment import Environment
from damso_ops.config.model import Config
from damso_ops.config.roles import Role

Problems = list[tuple[str, str]]  # (key path, what is wrong)


def problems(cfg: Config) -> Problems:
    """Every cross-check's problems, then what AWS would refuse (see aws_limits.py)."""
    found = _secret_build_args(cfg) + _services(cfg)
    for env_name, env in cfg.environments.items():
        for check in ENVIRONMENT_CHECKS:
            found += check(cfg, env_name, env)
    return found + aws_limits.problems(cfg)


def _secret_build_args(cfg: Config) -> Problems:
    """A build argument named like a role's secret: anyone who pulls the image could read it."""
    found = []
    secret_names = {n for env in cfg.environments.values() for role in env.roles.values() for n in role.secrets}
    baked = [(f"services.{n}.build_args", svc.build_args) for n, svc in cfg.services.items()]
    baked += [(f"environments.{n}.build_args", env.build_args) for n, env in cfg.environments.items()]
    for where, args in baked:
        for key in sorted(set(args) & secret_names):
            found.append((f"{where}.{key}", f"must not be set: {key} is a secret, and a build argument is readable by anyone "
                          "who pulls the image; the container reads it at run time from SSM"))  # fmt: skip
    return found


def _services(cfg: Config) -> Problems:
    """A service's repository exists, and each environment gives the build args it takes from it."""
    found = []
    for name, svc in cfg.services.items():
        if svc.repo not in cfg.repositories:
            found.append((f"services.{name}.repo", f"repository {svc.repo!r} is not defined under [repositories]"))
        for arg in svc.env_build_args:
            if arg in svc.build_args:
                found.append((f"services.{name}.env_build_args", f"{arg} is also set in services.{name}.build_args"))
            for env_name, env in cfg.environments.items():
                if arg not in env.build_args:
                    found.append((f"environments.{env_name}.build_args.{arg}", f"missing; services.{name} takes it from each environment"))
    return found


def _edge_stack(cfg: Config, env_name: str, env: Environment) -> Problems:
    """The edge stack (load balancer) needs a domain, a certificate and the api and web roles."""
    found = []
    if "edge" in env.stacks:
        for key in ("domain", "certificate_arn"):
            if not getattr(env, key):
                found.append((f"environments.{env_name}.{key}", "is required by the edge stack"))
        for role in ("api", "web"):
            if role not in env.roles:
                found.append((f"environments.{env_name}.roles.{role}", "is required by the edge stack"))
    return found


def _livekit_domain(cfg: Config, env_name: str, env: Environment) -> Problems:
    """LiveKit's DNS record or TLS certificate is for <subdomain>.<domain>: it needs a domain."""
    if "livekit" in env.roles and not env.domain and (env.zone_id or env.livekit.tls):
        what = "livekit.tls" if env.livekit.tls else "zone_id"
        return [(f"environments.{env_name}.domain", f"is required by {what} (the LiveKit DNS name is <subdomain>.<domain>)")]
    return []


def _wave_settings(cfg: Config, env_name: str, env: Environment) -> Problems:
    """No empty wave, and earlier waves go back only when the failed one does."""
    found = []
    if any(not wave for wave in env.rollout):
        found.append((f"environments.{env_name}.rollout", "has an empty wave ([]); remove it"))
    if env.rollback_earlier_waves and not env.rollback:
        found.append((f"environments.{env_name}.rollback_earlier_waves",
                      "is true while rollback is false: earlier waves cannot go back when the failed one stays; "
                      "set rollback = true or drop rollback_earlier_waves"))  # fmt: skip
    return found


def _livekit_webhooks(cfg: Config, env_name: str, env: Environment) -> Problems:
    """A webhook receiver listed twice would be called twice."""
    urls = list(env.livekit.webhook_urls)
    return [(f"environments.{env_name}.livekit.webhook_urls", f"lists {url} more than once (LiveKit would call it twice)")
            for url in sorted({u for u in urls if urls.count(u) > 1})]  # fmt: skip


def _rollout_roles(cfg: Config, env_name: str, env: Environment) -> Problems:
    """The waves name each of the environment's roles exactly once, and no other."""
    found = []
    listed = [r for wave in env.rollout for r in wave]
    for role in sorted({r for r in listed if listed.count(r) > 1}):
        found.append((f"environments.{env_name}.rollout", f"lists role {role!r} more than once"))
    for role in sorted(set(listed) - set(env.roles)):
        found.append((f"environments.{env_name}.rollout", f"names role {role!r}, which is not under roles"))
    if env.rollout and set(env.roles) - set(listed):
        missing = ", ".join(sorted(set(env.roles) - set(listed)))
        found.append((f"environments.{env_name}.rollout", f"leaves out {missing}: every role moves in some wave"))
    return found


def _zone_count(cfg: Config, env_name: str, env: Environment) -> Problems:
    """Subnets and databases span two zones: one is not enough."""
    if len(env.availability_zones) == 1:
        return [(f"environments.{env_name}.availability_zones", "needs two or more zones (subnets and databases span two)")]
    return []


def _role_settings(cfg: Config, env_name: str, env: Environment) -> Problems:
    """Each role's settings that would put a secret in plain text, or that its host or compose would refuse."""
    found = []
    for role_name, role in env.roles.items():
        found += _role_problems(env_name, role_name, role)
    return found


def _role_problems(env_name: str, role_name: str, role: Role) -> Problems:
    where = f"environments.{env_name}.roles.{role_name}"
    found = []
    for key, value in sorted(role.env.items()):
        if key in ("LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"):
            found.append((f"{where}.env.{key}", "must not be typed here: it comes from the keys 'damso livekit up' keeps in SSM; "
                          f"list {key} under the role's secrets instead"))  # fmt: skip
        elif key in role.secrets:
            found.append((f"{where}.env.{key}", f"must not be typed here: {key} is one of the role's secrets, so its value "
                          f"lives only in SSM (remove it from env and run 'damso secrets set {env_name} {role_name} {key}')"))  # fmt: skip
        elif credentials.looks_like_token(value):
            found.append((f"{where}.env.{key}", "looks like a credential, which env would write in plain text to S3 and "
                          f"'damso diff'; list {key} under the role's secrets and run 'damso secrets set {env_name} {role_name} {key}' "
                          "(the value is not shown)"))  # fmt: skip
        elif "\n" in value or "\r" in value or "\0" in value:
            found.append((f"{where}.env.{key}", "has a line break or NUL, which an env file cannot hold (compose would read "
                          "the rest as other lines); put it on one line"))  # fmt: skip
    found += _steps(where, role)
    if role_name == "livekit" and role.count > 1:
        found.append((f"{where}.count", f"is {role.count}, but LiveKit runs as one server here: one DNS record and one load "
                      "balancer target reach it, and livekit.yaml has no Redis to share rooms between nodes; set count = 1 "
                      "(a bigger instance_type scales it up)"))  # fmt: skip
    grace = _seconds(role.stop_grace_period)
    if grace > role.health_timeout:
        found.append((f"{where}.stop_grace_period", f"{role.stop_grace_period} is longer than health_timeout "
                      f"({role.health_timeout} s): a container that ignores SIGTERM would outlast the health wait; "
                      "shorten it or raise health_timeout"))  # fmt: skip
    return found


def _steps(where: str, role: Role) -> Problems:
    """Release tasks: unique names, in one of the role's services' images; secret files: plain paths."""
    found, names = [], [t.name for t in role.tasks]
    for n, task in enumerate(role.tasks):
        if names.count(task.name) > 1 and names.index(task.name) == n:
            found.append((f"{where}.tasks", f"names task {task.name!r} more than once"))
        if task.service is not None and task.service not in role.services:
            found.append((f"{where}.tasks.{n}.service", f"{task.service!r} is not one of the role's services "
                          f"({', '.join(role.services) or 'none'}); a task runs in one of their images, or give image"))  # fmt: skip
    for name, file in sorted(role.secret_files.items()):
        if ".." in file.path.split("/") or "//" in file.path:
            found.append((f"{where}.secret_files.{name}.path", f"{file.path!r} must be a plain absolute path (no '..' or '//')"))
    return found


def _seconds(duration: str) -> float:
    """A compose duration (1m30s, 500ms) in seconds."""
    unit = {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    return sum(int(n) * unit[u] for n, u in re.findall(r"([0-9]+)(us|ms|s|m|h)", duration))


def _redis_without_tls(cfg: Config, env_name: str, env: Environment) -> Problems:
    """Redis without TLS needs a reason, and has no AUTH (ElastiCache allows it only with TLS)."""
    found = []
    if not env.data.redis_tls:
        if not env.data.redis_tls_off_reason.strip():
            found.append((f"environments.{env_name}.data.redis_tls_off_reason",
                          "is required when redis_tls = false: say why Redis may carry data without TLS "
                          "(e.g. a client that accepts only redis://)"))  # fmt: skip
        for role_name, role in env.roles.items():
            if "REDIS_AUTH_TOKEN" in role.secrets:
                found.append((f"environments.{env_name}.roles.{role_name}.secrets",
                              "lists REDIS_AUTH_TOKEN, but data.redis_tls = false and ElastiCache allows AUTH "
                              "only with TLS; remove it or turn redis_tls back on"))  # fmt: skip
    return found


def _host_imds(cfg: Config, env_name: str, env: Environment) -> Problems:
    """A stand-in metadata service is for the sandbox only."""
    if env.host_imds_url and not env.sandbox:
        return [(f"environments.{env_name}.host_imds_url", "is only for sandbox environments (real hosts use 169.254.169.254)")]
    return []


def _role_services_and_amis(cfg: Config, env_name: str, env: Environment) -> Problems:
    """A role runs services the config defines; in the sandbox it names its AMI (lookups find nothing there)."""
    found = []
    for role_name, role in env.roles.items():
        for svc in role.services:
            if svc not in cfg.services:
                found.append((f"environments.{env_name}.roles.{role_name}.services", f"unknown service {svc!r}"))
        if env.sandbox and not role.ami:
            found.append((f"environments.{env_name}.roles.{role_name}.ami", "is required for a sandbox environment"))
    return found


# Each environment's checks, in the order they run.
ENVIRONMENT_CHECKS = (
    _edge_stack,
    _livekit_domain,
    _wave_settings,
    _livekit_webhooks,
    _rollout_roles,
    _zone_count,
    _role_settings,
    _redis_without_tls,
    _host_imds,
    _role_services_and_amis,
)
