"""damso doctor: is this machine ready? One check a line.

Plain `damso doctor` checks what a laptop needs for everything; `--for build` and
`--for deploy` check only what one CI job needs, so that a job fails at its first
step for what it lacks and never for what it does not use.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

from damso_ops.aws import AwsEndpoint, explain
from damso_ops.images import builder, sources
from damso_ops.images.engine import connect
from damso_ops.deploy import planning
from damso_ops.deploy.target import connect as target_of
from damso_ops.errors import CommandError, DamsoError
from damso_ops.operate.deployed import find_deployed
from damso_ops.runner import run

PURPOSES = ("build", "deploy")
GIT_TIMEOUT = 60  # seconds for one `git ls-remote`


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
        known = explain(exc)
        return Check(name, False, str(known) if known else f"{type(exc).__name__}: {exc}")


# ---- probes: each returns one line on success or raises -----------------------------------


def _config_detail(cfg, env_name: str | None) -> str:
    detail = f"{cfg.path}: {len(cfg.services)} services, {len(cfg.environments)} environments"
    if env_name is not None:
        env = cfg.environment(env_name)
        detail += f"; {env_name} is {'a sandbox' if env.sandbox else 'in ' + env.region}"
    return detail


def terraform_probe() -> str:
    found = planning.terraform_version()  # refuses one older than 1.10
    mirror = planning.find_mirror()
    source = f"provider mirror {mirror}" if mirror else "providers from the public registry"
    return f"Terraform {found}; {source}"


def docker_probe() -> str:
    info = connect(timeout=10).version()
    return f"Docker engine {info.get('Version', '?')} (API {info.get('ApiVersion', '?')})"


def credentials_probe(cfg) -> str:
    auth = builder.credentials(cfg.registry)
    return f"{auth.host} as {auth.username} (from {auth.source})"


def git_probe() -> str:
    if not shutil.which("git"):
        raise DamsoError("git is not on the PATH.", hint="Install git.")
    return run(sources.git("--version"), timeout=GIT_TIMEOUT).output.strip()


def sources_probe(cfg) -> str:
    """Every repository answers `git ls-remote` with the credentials git has here."""
    if not shutil.which("git"):
        raise DamsoError("Not checked: git is not on the PATH.")

    def answers(item) -> str | None:
        name, repo = item
        try:
            run(sources.ls_remote(repo.url), timeout=GIT_TIMEOUT)
        except CommandError as exc:
            last = (exc.output_tail or "").strip().splitlines()
            return f"'{name}' at {repo.url}" + (f" ({last[-1].strip()})" if last else "")
        except DamsoError as exc:  # timed out
            return f"'{name}' at {repo.url} ({exc.message})"
        return None

    repos = sorted(cfg.repositories.items())
    with ThreadPoolExecutor(max_workers=min(8, len(repos) or 1)) as pool:
        failed = [f for f in pool.map(answers, repos) if f]
    if failed:
        raise DamsoError(
            f"git cannot list the refs of {', '.join(failed)}.",
            hint="Check the URLs under [repositories] and git's credentials for them (in CI: SOURCE_REPOS_TOKEN).",
        )
    return f"{len(repos)} repositories answer: {', '.join(name for name, _ in repos)}"


def aws_probe(cfg, env_name: str | None) -> str:
    """The AWS credentials work (sts GetCallerIdentity) in the region of every environment
    concerned: env_name's, else every non-sandbox environment's. A sandbox needs none."""
    envs = {env_name: cfg.environment(env_name)} if env_name is not None else dict(cfg.environments)
    if not envs:
        raise DamsoError(f"{cfg.path} defines no environment to deploy.", hint="Add [environments.<name>] to damso.toml.")
    real = {name: env for name, env in envs.items() if not env.sandbox}
    if not real:
        return f"{', '.join(sorted(envs))}: sandbox, the embedded emulator needs no AWS credentials"
    regions = sorted({env.region for env in real.values()})
    identity = {}
    for region in regions:
        identity = AwsEndpoint(region).client("sts").get_caller_identity()
    return f"account {identity['Account']} as {identity['Arn']} in {', '.join(regions)}"


def ssm_probe(cfg, env_name: str) -> str:
    """Which of env_name's deployed instances the SSM agent registered: damso exec reaches only those.
    Not a failure (a deploy needs no SSM): the line says which ones it cannot reach."""
    if cfg.environment(env_name).sandbox:
        return f"{env_name}: sandbox, the emulator records damso exec's commands and runs none"
    target = target_of(cfg, env_name)
    try:
        where = find_deployed(target)
    except DamsoError:
        return f"{env_name} is not deployed yet: no instance to check"
    roles = {h["instance_id"]: role for role, hosts in where.hosts.items() for h in hosts}
    try:
        found = registered(target.aws.client("ssm"), sorted(roles))
    except Exception as exc:  # noqa: BLE001 - a deploy needs no SSM: say it, do not fail the job
        code = getattr(exc, "response", {}).get("Error", {}).get("Code") or type(exc).__name__
        return f"could not ask SSM which instances it knows ({code}); saying which ones damso exec reaches needs ssm:DescribeInstanceInformation"
    return ssm_detail(roles, found)


def registered(ssm, ids: list[str]) -> set[str]:
    """The instances among ids that the SSM agent registered (online or not)."""
    found: set[str] = set()
    for chunk in (ids[i:i + 50] for i in range(0, len(ids), 50)):
        pages = ssm.get_paginator("describe_instance_information").paginate(Filters=[{"Key": "InstanceIds", "Values": chunk}])
        found.update(info["InstanceId"] for page in pages for info in page.get("InstanceInformationList", []))
    return found


def ssm_detail(roles: dict[str, str], found: set[str]) -> str:
    missing = [f"{i} ({roles[i]})" for i in sorted(roles) if i not in found]
    if not missing:
        return f"every instance ({len(roles)}) is registered with SSM: damso exec reaches them"
    return (f"{len(roles) - len(missing)} of {len(roles)} instances registered with SSM; not registered: "
            f"{', '.join(missing)}: damso exec cannot reach them (the SSM agent must run and reach SSM)")  # fmt: skip


# ---- the checks of each purpose -------------------------------------------------------------


def run_checks(load_config: Callable[[], object], purpose: str | None = None, env_name: str | None = None) -> list[Check]:
    """The checks of `purpose` (None: everything a laptop needs), in order."""
    if purpose is not None and purpose not in PURPOSES:
        raise DamsoError(f"Unknown doctor purpose {purpose!r} (known: {', '.join(PURPOSES)}).")
    loaded: list = []

    def config_probe() -> str:
        cfg = load_config()
        loaded.append(cfg)
        return _config_detail(cfg, env_name)

    def with_config(probe: Callable[..., str], *args) -> Callable[[], str]:
        def call() -> str:
            if not loaded:
                raise DamsoError("Not checked: damso.toml did not load.")
            return probe(loaded[0], *args)

        return call

    checks = [_check("config", config_probe)]
    if purpose is None:
        checks += [
            _check("terraform", terraform_probe),
            _check("docker", docker_probe),
            _check("registry credentials", with_config(credentials_probe)),
        ]
    elif purpose == "build":
        checks += [
            _check("git", git_probe),
            _check("source repositories", with_config(sources_probe)),
            _check("docker", docker_probe),
            _check("registry credentials", with_config(credentials_probe)),
        ]
    else:
        checks += [
            _check("terraform", terraform_probe),
            _check("aws credentials", with_config(aws_probe, env_name)),
        ]
        if env_name is not None:
            checks.append(_check("ssm agents", with_config(ssm_probe, env_name)))
    return checks
