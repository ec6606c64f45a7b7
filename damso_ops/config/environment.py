"""An environment of damso.toml ([environments.<name>]): its region and network, the LiveKit server,
the data stack's settings, GPU dev boxes, its roles and the rollout's waves."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints, model_validator

from damso_ops import values
from damso_ops.config.fields import (
    HTTPS_URL,
    Ami,
    Cidr,
    DnsName,
    EnvVarName,
    InstanceType,
    Model,
    Name,
    PinnedImage,
    Region,
    _checked,
)
from damso_ops.config.roles import Role

DEFAULT_ZONES = {"ap-northeast-2": ("ap-northeast-2a", "ap-northeast-2c")}  # where damso's first environments are


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


LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)


def _retention(days: int) -> int:
    if days not in LOG_RETENTION_DAYS:
        raise ValueError(f"{days} is not a CloudWatch Logs retention; use one of {', '.join(map(str, LOG_RETENTION_DAYS))} (days)")
    return days


class Logs(Model):
    """Where the containers' logs go (damso logs): CloudWatch Logs, one group per role."""

    cloudwatch: bool = Field(default=True, description="containers log to CloudWatch Logs (false: only on the host, and in reports)")
    retention_days: Annotated[int, AfterValidator(_retention)] = Field(
        default=30, description="how long each role's log group keeps lines (a CloudWatch Logs retention value)")


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
    logs: Logs = Field(default=Logs(), description="the containers' logs: CloudWatch Logs on or off, and how long kept")
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
