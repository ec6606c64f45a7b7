"""damso.toml → validated, typed models. Every error names the file and the key path."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from damso_ops import values
from damso_ops.errors import ConfigError, UsageError

CONFIG_NAME = "damso.toml"

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
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
CredentialVar = Annotated[str, _checked(values.env_var_name)]  # names a variable; never echoes a value typed in its place
SecretName = Annotated[str, _checked(values.secret_name)]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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

    def stack_name(self, role: str) -> str:
        return self.stack or role

    def instance_type_for(self, role: str) -> str:
        return self.instance_type or DEFAULT_INSTANCE_TYPES.get(role, "t3.small")


DEFAULT_INSTANCE_TYPES = {"livekit": "c7i.xlarge"}
DEFAULT_ZONES = {"ap-northeast-2": ("ap-northeast-2a", "ap-northeast-2c")}  # where damso's first environments are
HTTPS_URL = r"^https://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~%/-]*)?$"


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


class LiveKit(Model):
    """The environment's LiveKit server: what runs on the livekit role's host."""

    image: PinnedImage = "livekit/livekit-server:v1.8.4"
    caddy_image: PinnedImage = "caddy:2.8.4"
    tls: bool = Field(default=False, description="Caddy terminates TLS for <subdomain>.<domain> (opens 80 and 443)")
    subdomain: Annotated[str, _checked(values.dns_label)] = "livekit"
    port: int = Field(default=7880, ge=1, le=65535)
    tcp_port: int = Field(default=7883, ge=1, le=65535, description="rtc.tcp_port, the TCP fallback")
    udp_port_start: int = Field(default=50000, ge=1024, le=65535)
    udp_port_end: int = Field(default=60000, ge=1024, le=65535)
    log_level: str = Field(default="info", pattern=r"^(debug|info|warn|error)$")
    webhook_urls: list[Annotated[str, StringConstraints(pattern=HTTPS_URL), _checked(values.https_url)]] = Field(
        default=[], description="shared webhook receivers; developers add theirs with damso livekit webhooks add"
    )

    @model_validator(mode="after")
    def _ports(self) -> "LiveKit":
        if self.udp_port_end <= self.udp_port_start:
            raise ValueError("udp_port_end must be greater than udp_port_start")
        if self.port == self.tcp_port:
            raise ValueError(f"port and tcp_port are both {self.port}; LiveKit needs two different TCP ports")
        taken = [(k, getattr(self, k)) for k in ("port", "tcp_port") if self.tls and getattr(self, k) in (80, 443)]
        if taken:
            key, value = taken[0]
            raise ValueError(f"{key} is {value}, which Caddy holds with tls = true (80 and 443); LiveKit could not bind it, pick another")
        return self


class GpuDevBox(Model):
    """One of the team's GPU dev instances (stack gpu-dev): created stopped, started on demand."""

    instance_type: InstanceType = "g5.xlarge"
    ami: Ami = Field(default="", description="AMI id (default: the newest Deep Learning PyTorch AMI; required for the sandbox)")
    volume_size: int = Field(default=200, ge=8, le=16384)
    user: Annotated[str, _checked(values.linux_user)] = Field(default="ubuntu", description="SSH login user")
    ssh_cidrs: list[Cidr] = Field(default=[], description="who may reach port 22 (default: the environment's ssh_cidrs)")
    allow_ssh_from_anywhere: bool = Field(default=False, description="ssh_cidrs may hold 0.0.0.0/0 (refused otherwise)")
    key_name: str | None = Field(default=None, min_length=1, max_length=255, description="EC2 key pair for SSH")
    start_stopped: bool = Field(default=True, description="leave the instance stopped after it is created")
    warn_after_hours: float = Field(default=8, ge=0, le=24 * 31, description="status warns when the box has run longer")


class Data(Model):
    """The data stack's settings (`stacks = ["data"]`): PostgreSQL and Redis."""

    redis_tls: bool = Field(
        default=True,
        description="Redis requires TLS in transit (rediss://) and damso turns AUTH on; false: plain redis://, no AUTH "
        "(ElastiCache allows AUTH only with TLS), only for clients that cannot speak TLS",
    )
    redis_tls_off_reason: str = Field(default="", description="why Redis runs without TLS (required when redis_tls = false)")


class Environment(Model):
    region: Region = "ap-northeast-2"
    availability_zones: list[Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]+[a-z]$")]] = Field(
        default=[], description="zones of the subnets, two or more of the region's (default: see zones())"
    )
    domain: DnsName = ""
    zone_id: Annotated[str, _checked(values.zone_id)] = Field(default="", description="Route53 hosted zone of the domain (edge, livekit records)")
    certificate_arn: Annotated[str, _checked(values.certificate_arn)] = Field(default="", description="ACM certificate for the edge stack")
    sandbox: bool = Field(default=False, description="run against damso's embedded AWS emulator")
    flow_logs: bool = Field(default=True, description="VPC flow logs to CloudWatch Logs (kept a year)")
    host_imds_url: str = Field(
        default="", pattern=r"^(https?://[A-Za-z0-9.:\[\]-]+)?$",
        description="sandbox only: the instance metadata service (IMDSv2) the hosts' user-data points them at, "
        "e.g. a test's fake one on 127.0.0.1; real hosts use 169.254.169.254",
    )  # fmt: skip
    stacks: list[Name] = Field(default=[], description="extra stacks besides shared and the roles' own")
    ssh_cidrs: list[Cidr] = []
    allow_ssh_from_anywhere: bool = Field(default=False, description="ssh_cidrs may hold 0.0.0.0/0 (refused otherwise)")
    state_bucket: Annotated[str | None, _checked(values.bucket)] = None
    build_args: dict[EnvVarName, str] = {}
    livekit: LiveKit = LiveKit()
    data: Data = Field(default=Data(), description="the data stack's settings (Redis transit encryption)")
    roles: dict[Name, Role] = {}
    gpu_dev: dict[Name, GpuDevBox] = Field(default={}, description="GPU dev boxes: damso dev gpu start|stop|status|ssh")
    rollout: list[list[Name]] = Field(
        default=[], description='waves of roles, e.g. [["api"], ["web"], ["agent"]]: a wave moves once the one before is healthy'
    )
    rollback: bool = Field(default=True, description="a failed wave's roles go back to the release they ran (--no-rollback: stay)")
    rollback_earlier_waves: bool = Field(
        default=False, description="on a failed wave, earlier waves go back too (the waves only make sense together)"
    )

    def zones(self) -> list[str]:
        """availability_zones, else the zones damso always used in ap-northeast-2 (a and c, so existing
        subnets stay), else [] (the shared stack takes the region's first two)."""
        return list(self.availability_zones) or list(DEFAULT_ZONES.get(self.region, []))

    def waves(self, roles=None) -> list[list[str]]:
        """The rollout's waves, restricted to `roles` (default all); one wave of everything without `rollout`."""
        wanted = list(self.roles) if roles is None else list(roles)
        waves = self.rollout or [list(self.roles)]
        return [w for w in ([r for r in wave if r in wanted] for wave in waves) if w]

    def box_ssh_cidrs(self, box: str) -> list[str]:
        """Who may reach a GPU dev box's port 22: its own ssh_cidrs, else the environment's."""
        return list(self.gpu_dev[box].ssh_cidrs or self.ssh_cidrs)


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


def _cross_check(cfg: Config) -> list[tuple[str, str]]:
    problems = []
    secret_names = {n for env in cfg.environments.values() for role in env.roles.values() for n in role.secrets}
    baked = [(f"services.{n}.build_args", svc.build_args) for n, svc in cfg.services.items()]
    baked += [(f"environments.{n}.build_args", env.build_args) for n, env in cfg.environments.items()]
    for where, args in baked:
        for key in sorted(set(args) & secret_names):
            problems.append((f"{where}.{key}", f"must not be set: {key} is a secret, and a build argument is readable by anyone "
                             "who pulls the image; the container reads it at run time from SSM"))  # fmt: skip
    for name, svc in cfg.services.items():
        if svc.repo not in cfg.repositories:
            problems.append(
                (f"services.{name}.repo", f"repository {svc.repo!r} is not defined under [repositories]")
            )
        for arg in svc.env_build_args:
            if arg in svc.build_args:
                problems.append(
                    (f"services.{name}.env_build_args", f"{arg} is also set in services.{name}.build_args")
                )
            for env_name, env in cfg.environments.items():
                if arg not in env.build_args:
                    problems.append(
                        (
                            f"environments.{env_name}.build_args.{arg}",
                            f"missing; services.{name} takes it from each environment",
                        )
                    )
    for env_name, env in cfg.environments.items():
        if "edge" in env.stacks:
            for key in ("domain", "certificate_arn"):
                if not getattr(env, key):
                    problems.append((f"environments.{env_name}.{key}", "is required by the edge stack"))
            for role in ("api", "web"):
                if role not in env.roles:
                    problems.append((f"environments.{env_name}.roles.{role}", "is required by the edge stack"))
        if "livekit" in env.roles and not env.domain and (env.zone_id or env.livekit.tls):
            what = "livekit.tls" if env.livekit.tls else "zone_id"
            problems.append((f"environments.{env_name}.domain", f"is required by {what} (the LiveKit DNS name is <subdomain>.<domain>)"))
        if any(not wave for wave in env.rollout):
            problems.append((f"environments.{env_name}.rollout", "has an empty wave ([]); remove it"))
        if env.rollback_earlier_waves and not env.rollback:
            problems.append((f"environments.{env_name}.rollback_earlier_waves",
                             "is true while rollback is false: earlier waves cannot go back when the failed one stays; "
                             "set rollback = true or drop rollback_earlier_waves"))  # fmt: skip
        urls = list(env.livekit.webhook_urls)
        for url in sorted({u for u in urls if urls.count(u) > 1}):
            problems.append((f"environments.{env_name}.livekit.webhook_urls", f"lists {url} more than once (LiveKit would call it twice)"))
        listed = [r for wave in env.rollout for r in wave]
        for role in sorted({r for r in listed if listed.count(r) > 1}):
            problems.append((f"environments.{env_name}.rollout", f"lists role {role!r} more than once"))
        for role in sorted(set(listed) - set(env.roles)):
            problems.append((f"environments.{env_name}.rollout", f"names role {role!r}, which is not under roles"))
        if env.rollout and set(env.roles) - set(listed):
            missing = ", ".join(sorted(set(env.roles) - set(listed)))
            problems.append((f"environments.{env_name}.rollout", f"leaves out {missing}: every role moves in some wave"))
        if len(env.availability_zones) == 1:
            problems.append((f"environments.{env_name}.availability_zones", "needs two or more zones (subnets and databases span two)"))
        for role_name, role in env.roles.items():
            problems += _role_problems(cfg, env_name, env, role_name, role)
        if not env.data.redis_tls:
            if not env.data.redis_tls_off_reason.strip():
                problems.append((f"environments.{env_name}.data.redis_tls_off_reason",
                                 "is required when redis_tls = false: say why Redis may carry data without TLS "
                                 "(e.g. a client that accepts only redis://)"))  # fmt: skip
            for role_name, role in env.roles.items():
                if "REDIS_AUTH_TOKEN" in role.secrets:
                    problems.append((f"environments.{env_name}.roles.{role_name}.secrets",
                                     "lists REDIS_AUTH_TOKEN, but data.redis_tls = false and ElastiCache allows AUTH "
                                     "only with TLS; remove it or turn redis_tls back on"))  # fmt: skip
        if env.host_imds_url and not env.sandbox:
            problems.append((f"environments.{env_name}.host_imds_url", "is only for sandbox environments (real hosts use 169.254.169.254)"))
        for role_name, role in env.roles.items():
            for svc in role.services:
                if svc not in cfg.services:
                    problems.append(
                        (f"environments.{env_name}.roles.{role_name}.services", f"unknown service {svc!r}")
                    )
            if env.sandbox and not role.ami:
                problems.append(
                    (f"environments.{env_name}.roles.{role_name}.ami", "is required for a sandbox environment")
                )
    return problems


def _role_problems(cfg: Config, env_name: str, env: Environment, role_name: str, role: Role) -> list[tuple[str, str]]:
    """A role's settings that would put a secret in plain text, or that its host or compose would refuse."""
    where = f"environments.{env_name}.roles.{role_name}"
    problems = []
    for key, value in sorted(role.env.items()):
        if key in ("LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"):
            problems.append((f"{where}.env.{key}", "must not be typed here: it comes from the keys 'damso livekit up' keeps in SSM; "
                             f"list {key} under the role's secrets instead"))  # fmt: skip
        elif key in role.secrets:
            problems.append((f"{where}.env.{key}", f"must not be typed here: {key} is one of the role's secrets, so its value "
                             f"lives only in SSM (remove it from env and run 'damso secrets set {env_name} {role_name} {key}')"))  # fmt: skip
        elif values.looks_like_token(value):
            problems.append((f"{where}.env.{key}", "looks like a credential, which env would write in plain text to S3 and "
                             f"'damso diff'; list {key} under the role's secrets and run 'damso secrets set {env_name} {role_name} {key}' "
                             "(the value is not shown)"))  # fmt: skip
        elif "\n" in value or "\r" in value or "\0" in value:
            problems.append((f"{where}.env.{key}", "has a line break or NUL, which an env file cannot hold (compose would read "
                             "the rest as other lines); put it on one line"))  # fmt: skip
    if role_name == "livekit" and role.count > 1:
        problems.append((f"{where}.count", f"is {role.count}, but LiveKit runs as one server here: one DNS record and one load "
                         "balancer target reach it, and livekit.yaml has no Redis to share rooms between nodes; set count = 1 "
                         "(a bigger instance_type scales it up)"))  # fmt: skip
    grace = _seconds(role.stop_grace_period)
    if grace > role.health_timeout:
        problems.append((f"{where}.stop_grace_period", f"{role.stop_grace_period} is longer than health_timeout "
                         f"({role.health_timeout} s): a container that ignores SIGTERM would outlast the health wait; "
                         "shorten it or raise health_timeout"))  # fmt: skip
    return problems


def _seconds(duration: str) -> float:
    """A compose duration (1m30s, 500ms) in seconds."""
    unit = {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    return sum(int(n) * unit[u] for n, u in re.findall(r"([0-9]+)(us|ms|s|m|h)", duration))


def _refused_by_aws(cfg: Config) -> list[tuple[str, str]]:
    """What AWS would refuse that no single key shows: bucket names made of several keys, SSH
    open to everyone without saying so, zones and certificates of another region."""
    problems = []

    def bucket_problem(env_name: str) -> str | None:
        bucket = f"{cfg.project.name}-{env_name}-artifacts-{'0' * 12}"  # the longest name damso makes
        why = values.bucket_rule(bucket)
        shown = bucket.replace("0" * 12, "ACCOUNT")
        return f"makes the bucket name {shown!r}, which S3 refuses: it {why}" if why else None

    project_problem = bucket_problem("e")  # the project's name alone, with the shortest environment name
    if project_problem:
        problems.append(("project.name", f"{cfg.project.name!r} {project_problem}"))
    for env_name, env in cfg.environments.items():
        where = f"environments.{env_name}"
        env_problem = None if project_problem else bucket_problem(env_name)
        if env_problem:
            problems.append((where, f"with project.name {cfg.project.name!r} {env_problem}"))
        owners = [(where, env.ssh_cidrs, env.allow_ssh_from_anywhere)]
        owners += [(f"{where}.gpu_dev.{n}", box.ssh_cidrs, box.allow_ssh_from_anywhere) for n, box in env.gpu_dev.items()]
        for owner, cidrs, allowed in owners:
            for cidr in sorted({c for c in cidrs if cidrs.count(c) > 1}):
                problems.append((f"{owner}.ssh_cidrs", f"lists {cidr} more than once, which a security group refuses (InvalidPermission.Duplicate)"))
            if values.open_to_all(cidrs) and not allowed:
                problems.append((f"{owner}.ssh_cidrs", f"{', '.join(values.open_to_all(cidrs))} opens SSH to the whole internet; "
                                 f"list your own addresses, or set allow_ssh_from_anywhere = true in [{owner}]"))  # fmt: skip
        zones = list(env.availability_zones)
        for zone in zones:
            problem = values.availability_zone(zone, env.region)
            if problem:
                problems.append((f"{where}.availability_zones", problem))
        for zone in sorted({z for z in zones if zones.count(z) > 1}):
            problems.append((f"{where}.availability_zones", f"lists {zone!r} more than once"))
        if not project_problem and not env_problem:
            problems += _aws_names(cfg.project.name, env_name, env)
        cert = values.ACM_ARN.match(env.certificate_arn)
        if cert and cert.group(2) != env.region:
            problems.append((f"{where}.certificate_arn", f"is a certificate of {cert.group(2)}; the load balancer in {env.region} needs one of {env.region}"))
    return problems


def _aws_names(project: str, env_name: str, env: Environment) -> list[tuple[str, str]]:
    """Names the stacks give AWS resources, made of project, environment and role names, against
    AWS's limits for them (the longest of each kind)."""
    where = f"environments.{env_name}"
    made = [(f"{where}.roles.{r}", f"{project}-{env_name}-{r}", 64, r"[\w+=,.@-]+", "an IAM role name") for r in env.roles]
    if "edge" in env.stacks:
        suffix = "-livekit" if "livekit" in env.roles else "-alb"
        made.append((where, f"{project}-{env_name}{suffix}", 32, r"[A-Za-z0-9](-?[A-Za-z0-9])*", "a load balancer or target group name"))
    if "data" in env.stacks:
        made.append((where, f"{project}-{env_name}-redis", 40, r"[a-z](-?[a-z0-9])*", "an ElastiCache replication group id"))
    problems = []
    for key, name, limit, chars, what in made:
        if len(name) > limit:
            problems.append((key, f"makes {what} {name!r} of {len(name)} characters; AWS allows {limit} (shorten project.name or the names)"))
        elif not re.fullmatch(chars, name):
            problems.append((key, f"makes {what} {name!r}, which AWS refuses (only letters, digits and single '-' there)"))
    return problems


def _key_path(loc: tuple) -> str:
    """The key path of an error; a key that may hold a secret (NAME=value as a key) is not shown."""
    parts = [str(part) for part in loc]
    if parts and parts[-1] == "[key]":
        parts = parts[:-1] if not _shows_a_secret(parts[-2]) else parts[:-2] + ["(a key, not shown)"]
    return ".".join("(not shown)" if _shows_a_secret(p) else p for p in parts) or "(top level)"


def parse(text: str, path: Path) -> Config:
    """Validate TOML text; raise ConfigError naming the file and key path."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}.") from None
    try:
        cfg = Config.model_validate({**data, "path": path})
    except ValidationError as exc:
        problems = [(_key_path(e["loc"]), _pydantic_message(e)) for e in exc.errors()]
        raise _config_error(path, problems) from None
    problems = _cross_check(cfg) + _refused_by_aws(cfg)
    if problems:
        raise _config_error(path, problems)
    return cfg


def _pydantic_message(error: dict) -> str:
    if error["type"] == "missing":
        return "is required"
    if error["type"] == "extra_forbidden":
        return "is not a known setting (check the spelling)"
    message = _plain_message(error)
    given = error.get("input")
    if isinstance(given, str) and _shows_a_secret(given) and given in message:
        return "is refused; it looks like a secret's value, which damso.toml must never hold (what was given is not shown)"
    return message


def _shows_a_secret(text: str) -> bool:
    """NAME=value or a credential's shape: never repeated in an error."""
    return bool(re.match(r"[A-Za-z_][A-Za-z0-9_]*=.", text)) or values.looks_like_token(text)


def _plain_message(error: dict) -> str:
    if error["type"] == "string_pattern_mismatch":
        pattern = error.get("ctx", {}).get("pattern")
        if pattern == HTTPS_URL:
            return f"{error['input']!r} must be an https:// URL (webhook receivers are reached over TLS)"
        if pattern == NAME_PATTERN:
            return f"{error['input']!r} must be lowercase letters, digits, '.', '_' or '-'"
        return f"{error['input']!r} must match {pattern}"
    msg = error["msg"]
    return msg[len("Value error, ") :] if msg.startswith("Value error, ") else msg


def _config_error(path: Path, problems: list[tuple[str, str]]) -> ConfigError:
    def line(key: str, msg: str) -> str:
        return f"{key} {msg}" if msg.startswith("is ") else f"{key}: {msg}"

    more = "\n".join(line(k, m) for k, m in problems[1:])
    return ConfigError(
        f"{path}: {line(*problems[0])}.",
        details=f"Also:\n{more}" if more else None,
    )


def find(start: Path | None = None) -> Path:
    """damso.toml in the current folder or its parents (or DAMSO_CONFIG)."""
    env = os.environ.get("DAMSO_CONFIG")
    if env:
        return Path(env)
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
        if candidate.is_dir():
            raise ConfigError(f"{candidate} is a folder, not a file.", hint=f"damso reads its settings from a file named {CONFIG_NAME}.")
    raise ConfigError(
        f"No {CONFIG_NAME} found in {here} or any parent folder.",
        hint="Run 'damso init --example damso' (the Damso system) or 'damso init --repo URL' to write one, "
        "or pass --config PATH.",
    )


def load(path: Path | None = None) -> Config:
    path = Path(path) if path else find()
    if path.is_dir():
        inside = path / CONFIG_NAME
        hint = f"Pass --config {inside}." if inside.is_file() else f"Pass the path of a {CONFIG_NAME} file."
        raise ConfigError(f"Config path {path} is a folder, not a file.", hint=hint)
    if not path.is_file():
        raise ConfigError(f"Config file {path} does not exist.", hint="Pass an existing file with --config.")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} on line {line}).",
                          hint="Save it as UTF-8.") from None  # fmt: skip
    except OSError as exc:
        raise ConfigError(f"Config file {path} cannot be read: {exc.strerror}.") from None
    return parse(text, path.resolve())


