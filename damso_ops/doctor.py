"""damso doctor: is this machine ready? One check a line."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

from damso_ops.build import images
from damso_ops.build.engine import connect
from damso_ops.deploy import terraform
from damso_ops.errors import DamsoError


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def to_dict(self) -> dict:
        return asdict(self)


def _check(name: str, probe: Callable[[], str]) -> Check:
    try:
        return Check(name, True, probe())
    except DamsoError as exc:
        return Check(name, False, str(exc))
    except Exception as exc:  # noqa: BLE001 - a doctor reports, it does not crash
        return Check(name, False, f"{type(exc).__name__}: {exc}")


def run_checks(load_config: Callable[[], object]) -> list[Check]:
    def config_probe() -> str:
        cfg = load_config()
        return f"{cfg.path}: {len(cfg.services)} services, {len(cfg.environments)} environments"

    def terraform_probe() -> str:
        version = terraform.version()
        mirror = terraform.find_mirror()
        source = f"provider mirror {mirror}" if mirror else "providers from the public registry"
        return f"Terraform {version}; {source}"

    def docker_probe() -> str:
        info = connect(timeout=10).version()
        return f"Docker engine {info.get('Version', '?')} (API {info.get('ApiVersion', '?')})"

    def credentials_probe() -> str:
        auth = images.credentials(load_config().registry)
        return f"{auth.host} as {auth.username} (from {auth.source})"

    return [
        _check("config", config_probe),
        _check("terraform", terraform_probe),
        _check("docker", docker_probe),
        _check("registry credentials", credentials_probe),
    ]


