"""A GPU dev box as `damso dev gpu status` shows it: state, uptime, price, login, warnings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from damso_ops.hosts import prices
from damso_ops.hosts.instances import Instance
from damso_ops.timing import format_duration

NOT_CREATED = "not created"


# ---- formatting (pure) ------------------------------------------------------------


def format_price(hourly: float | None) -> str:
    return "price unknown" if hourly is None else f"${hourly:.3f}/h"


def cost_so_far(hourly: float | None, seconds: int | None) -> float | None:
    if hourly is None or seconds is None:
        return None
    return round(hourly * seconds / 3600, 2)


def over_threshold(seconds: int | None, warn_after_hours: float) -> bool:
    return seconds is not None and seconds >= warn_after_hours * 3600


# ---- status -----------------------------------------------------------------------


@dataclass
class BoxStatus:
    name: str
    env: str
    user: str
    configured: bool
    instance: Instance | None
    warn_after_hours: float | None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def state(self) -> str:
        return self.instance.state if self.instance else NOT_CREATED

    @property
    def instance_type(self) -> str | None:
        return self.instance.instance_type if self.instance else None

    @property
    def uptime(self) -> int | None:
        return self.instance.uptime_seconds(self.now) if self.instance else None

    @property
    def hourly(self) -> float | None:
        return prices.hourly(self.instance_type) if self.instance_type else None

    @property
    def login(self) -> str | None:
        ip = self.instance.public_ip if self.instance else None
        return f"{self.user}@{ip}" if ip and self.state == "running" else None

    @property
    def warning(self) -> str | None:
        if not self.configured and self.instance:
            return (f"{self.name} is not in damso.toml but exists ({self.state}); "
                    f"'damso dev gpu start' of any box applies the gpu-dev stack, which deletes it.")  # fmt: skip
        if self.warn_after_hours is None or not over_threshold(self.uptime, self.warn_after_hours):
            return None
        spent = cost_so_far(self.hourly, self.uptime)
        money = f", about ${spent:.2f} so far" if spent is not None else ""
        return (f"{self.name} has been running for {format_duration(self.uptime)} (warning after "
                f"{self.warn_after_hours:g} h{money}); stop it with 'damso dev gpu stop {self.name} --env {self.env}'.")  # fmt: skip

    def to_dict(self) -> dict:
        i = self.instance
        return {
            "name": self.name,
            "env": self.env,
            "state": self.state,
            "instance_id": i.id if i else None,
            "instance_type": self.instance_type,
            "public_ip": i.public_ip if i else None,
            "private_ip": i.private_ip if i else None,
            "uptime_seconds": self.uptime,
            "hourly_usd": self.hourly,
            "cost_so_far_usd": cost_so_far(self.hourly, self.uptime),
            "login": self.login,
            "configured": self.configured,
            "warning": self.warning,
        }
