"""Hourly on-demand prices (USD, Linux, ap-northeast-2) of the instance types damso users run.

Approximate list prices as of 2026; for showing what a running box costs, not for billing.
Check https://aws.amazon.com/ec2/pricing/on-demand/ when it matters.
"""

from __future__ import annotations

HOURLY_USD = {
    "t3.small": 0.026,
    "t3.medium": 0.052,
    "t3.large": 0.104,
    "c7i.large": 0.1008,
    "c7i.xlarge": 0.2016,
    "c7i.2xlarge": 0.4032,
    "g4dn.xlarge": 0.647,
    "g5.xlarge": 1.244,
    "g5.2xlarge": 1.499,
}


def hourly(instance_type: str) -> float | None:
    """The hourly price of an instance type, or None when damso's table does not know it."""
    return HOURLY_USD.get(instance_type)
