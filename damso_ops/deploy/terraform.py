"""The one adapter over Terraform (and python-terraform, unmaintained since 2019).

Builders return Commands; the runner executes them. Nothing else in damso
imports python_terraform.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from damso_ops.errors import DamsoError
from damso_ops.paths import cache_dir
from damso_ops.runner import Command, run

PROVIDER = "registry.terraform.io/hashicorp/aws"
MIRROR_CANDIDATES = ("/opt/tf-plugins", "~/.terraform.d/plugins", "/usr/share/terraform/plugins")


def find_mirror() -> Path | None:
    """A filesystem provider mirror holding hashicorp/aws (DAMSO_TF_MIRROR overrides)."""
    override = os.environ.get("DAMSO_TF_MIRROR")
    candidates = (override,) if override else MIRROR_CANDIDATES
    for candidate in candidates:
        root = Path(candidate).expanduser()
        if (root / PROVIDER).is_dir():
            return root
    return None


def cli_config_text(mirror: Path | None) -> str:
    """A Terraform CLI config: the mirror for hashicorp/*, the registry for the rest."""
    if mirror is None:
        return "# damso: providers from the public registry\n"
    return (
        "provider_installation {\n"
        f'  filesystem_mirror {{\n    path    = "{mirror}"\n    include = ["registry.terraform.io/hashicorp/*"]\n  }}\n'
        '  direct {\n    exclude = ["registry.terraform.io/hashicorp/*"]\n  }\n'
        "}\n"
    )


def _tf(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, **options) -> Command:
    from python_terraform import Terraform  # only here: the adapter boundary

    argv = Terraform(terraform_bin_path="terraform").generate_cmd_string(args[0], *args[1:], **options)
    return Command(tuple(argv), cwd=cwd, env=env or {})


TERRAFORM_GOGC = "400"


def cli_env(home: Path) -> dict[str, str]:
    """Environment for every terraform run: damso's own CLI config (mirror or registry).

    Providers from the registry go through one plugin cache per user (the AWS provider is
    ~700 MB), whatever DAMSO_CACHE_DIR says. From a filesystem mirror (unpacked) there is no
    cache: init links each stack's provider straight to the mirror, so inits share nothing and
    need no lock. TF_PLUGIN_CACHE_DIR, when set, is used either way.

    Terraform and the AWS provider spend most of a plan's CPU decoding the provider's schema,
    much of it in Go's garbage collector: GOGC=400 (unless the user set GOGC) takes about a fifth
    off each run's CPU for ~15% more memory (measured on a plan: 3.1 → 2.6 s, 320 → 375 MB)."""
    home.mkdir(parents=True, exist_ok=True)
    rc = home / "terraformrc"
    mirror = find_mirror()
    text = cli_config_text(mirror)
    if not rc.is_file() or rc.read_text() != text:
        rc.write_text(text)
    env = {"TF_CLI_CONFIG_FILE": str(rc), "TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1"}
    if "GOGC" not in os.environ:
        env["GOGC"] = TERRAFORM_GOGC
    if os.environ.get("TF_PLUGIN_CACHE_DIR") or mirror is None:
        from platformdirs import user_cache_dir

        plugin_cache = Path(os.environ.get("TF_PLUGIN_CACHE_DIR") or Path(user_cache_dir("damso")) / "terraform-plugins")
        plugin_cache.mkdir(parents=True, exist_ok=True)
        env["TF_PLUGIN_CACHE_DIR"] = str(plugin_cache)
    return env


def version_command(env: dict[str, str]) -> Command:
    return _tf("version", json=_flag(), env=env)


def _flag():
    from python_terraform import IsFlagged

    return IsFlagged


MIN_VERSION = (1, 10)  # the S3 backend's use_lockfile (every stack's backend.hcl) needs 1.10
MIN_VERSION_TEXT = ".".join(map(str, MIN_VERSION))


def version_tuple(text: str) -> tuple[int, ...]:
    """(major, minor, patch) of a Terraform version such as '1.11.4' or '1.10.0-beta1'."""
    match = re.match(r"v?(\d+)\.(\d+)(?:\.(\d+))?", text.strip())
    if not match:
        raise DamsoError(f"Cannot read the Terraform version {text!r}.")
    return tuple(int(part or 0) for part in match.groups())


def check_version(found: str) -> str:
    """found, or one sentence saying why damso cannot use a Terraform that old."""
    if version_tuple(found)[:2] < MIN_VERSION:
        raise DamsoError(
            f"Terraform {found} is too old: damso needs {MIN_VERSION_TEXT} or newer, "
            "whose S3 backend locks state with use_lockfile."
        )
    return found


def version() -> str:
    """The Terraform on the PATH (`terraform version -json`), refused when older than 1.10."""
    if not shutil.which("terraform"):
        raise DamsoError("terraform is not on the PATH.", hint=f"Install Terraform {MIN_VERSION_TEXT} or newer.")
    data = json.loads(run(version_command(cli_env(cache_dir() / "terraform"))).output)
    return check_version(data["terraform_version"])


# ---- per-stack commands ----------------------------------------------------------

PLAN_FILE = "damso.tfplan"
VARS_FILE = "damso.auto.tfvars.json"
BACKEND_FILE = "backend.hcl"
OVERRIDE_FILE = "damso_override.tf"
EMULATED_SERVICES = ("acm", "ec2", "elasticache", "elbv2", "iam", "kms", "logs", "rds", "route53", "s3", "ssm", "sts")


def init_command(stack_dir: Path, env: dict[str, str]) -> Command:
    return _tf("init", cwd=stack_dir, env=env, input=False, no_color=_flag(), reconfigure=_flag(),
               backend_config=BACKEND_FILE)  # fmt: skip


LOCK_ERROR = re.compile(r"Error acquiring the state lock")


def lock_error(stack: str, stack_dir: Path, output: str) -> DamsoError:
    """Terraform could not take its lock: which lock, who holds it, and the command that clears it."""
    lock_id = re.search(r"^\s*ID:\s*(\S+)", output, re.M)
    path = re.search(r"^\s*Path:\s*(\S+)", output, re.M)
    who = re.search(r"^\s*Who:\s*(\S+)", output, re.M)
    where = f"s3://{path.group(1)}.tflock" if path else "its .tflock object"
    by = f" (taken by {who.group(1)})" if who else ""
    clear = f"cd {stack_dir} && terraform force-unlock -force {lock_id.group(1)}" if lock_id else f"cd {stack_dir} && terraform force-unlock -force LOCK_ID"
    return DamsoError(
        f"terraform apply of {stack} is blocked by Terraform's lock {where}{by}.",
        hint=f"If no terraform runs on that state, clear it with '{clear}', then deploy again.",
        details=output,
    )


def plan_command(stack_dir: Path, env: dict[str, str], lock: bool = True) -> Command:
    """lock=False for a deploy's plans (deploy/planning.py says when): its look-ahead before damso's
    lock, whose plans are used only if no state changed since, and its plans inside that lock. A plan
    writes nothing to the state, so it need not write Terraform's lock object either. The plan
    speaks Terraform's machine-readable UI (-json): its planned changes are the plan's summary
    (plan_summary), so no `terraform show` runs after it."""
    options = dict(input=False, no_color=_flag(), json=_flag(), out=PLAN_FILE, detailed_exitcode=_flag())
    if lock:
        options["lock_timeout"] = "120s"
    else:
        options["lock"] = False
    return _tf("plan", cwd=stack_dir, env=env, **options)


def apply_command(stack_dir: Path, env: dict[str, str]) -> Command:
    return _tf("apply", PLAN_FILE, cwd=stack_dir, env=env, input=False, no_color=_flag(), lock_timeout="120s")


def apply_approved_command(stack_dir: Path, env: dict[str, str], destroy: bool = False) -> Command:
    """Plan and apply (or destroy) in one run, approved ahead; its plan's changes are its -json
    planned_change events, as a plan's are (plan_summary)."""
    options = dict(input=False, no_color=_flag(), json=_flag(), auto_approve=_flag(), lock_timeout="120s")
    if destroy:
        options["destroy"] = _flag()
    return _tf("apply", cwd=stack_dir, env=env, **options)


def backend_hcl(bucket: str, key: str, region: str, endpoint: str | None) -> str:
    lines = [f'bucket = "{bucket}"', f'key = "{key}"', f'region = "{region}"', "encrypt = true", "use_lockfile = true"]
    if endpoint:
        lines += [
            "use_path_style = true",
            "skip_credentials_validation = true",
            "skip_requesting_account_id = true",
            "skip_metadata_api_check = true",
            "skip_region_validation = true",
            f'endpoints = {{ s3 = "{endpoint}" }}',
        ]
    return "\n".join(lines) + "\n"


def override_tf(endpoint: str) -> str:
    """Merged into the stack's provider block: every service at the emulator."""
    endpoints = "\n".join(f'    {s} = "{endpoint}"' for s in EMULATED_SERVICES)
    return (
        'provider "aws" {\n'
        "  skip_credentials_validation = true\n"
        "  skip_requesting_account_id  = true\n"
        "  skip_metadata_api_check     = true\n"
        "  skip_region_validation      = true\n"
        "  s3_use_path_style           = true\n"
        f"  endpoints {{\n{endpoints}\n  }}\n"
        "}\n"
    )


@dataclass(frozen=True)
class PlanSummary:
    stack: str
    changes: tuple[tuple[str, str], ...]  # (action, resource address)
    skipped: bool = False  # not planned: code, inputs and state as at its last clean plan or apply

    @property
    def empty(self) -> bool:
        return not self.changes

    def counts(self) -> dict[str, int]:
        counts = {"create": 0, "update": 0, "replace": 0, "delete": 0}
        for action, _ in self.changes:
            counts[action] += 1
        return counts

    def text(self) -> str:
        c = self.counts()
        if self.skipped:
            return "no changes (not planned: code, inputs and state as at its last clean plan)"
        if self.empty:
            return "no changes"
        return ", ".join(f"{n} to {a}" for a, n in c.items() if n)


# `terraform plan -json`: each planned_change event's action → damso's word; the others
# ("noop", "read", "move" alone, "import" alone, "remove" from state only) change no object.
PLANNED_ACTIONS = {"create": "create", "update": "update", "replace": "replace", "delete": "delete"}


def _events(output: str) -> Iterator[dict | str]:
    """The lines of a -json run: each a JSON UI message (dict), or the raw line when not one."""
    for line in output.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        yield event if isinstance(event, dict) else line


def plan_summary(stack: str, output: str) -> PlanSummary:
    """The resource changes of `terraform plan -json`'s planned_change events, as (action, address)."""
    changes = []
    for event in _events(output):
        if isinstance(event, dict) and event.get("type") == "planned_change":
            change = event.get("change", {})
            action = PLANNED_ACTIONS.get(change.get("action", ""))
            if action:
                changes.append((action, change["resource"]["addr"]))
    return PlanSummary(stack, tuple(changes))


def readable(output: str) -> str:
    """A -json run's output as Terraform would have written it for a person: its messages, and
    each diagnostic as 'Error: summary', where, and its detail."""
    lines = []
    for event in _events(output):
        if not isinstance(event, dict):
            lines.append(event)
            continue
        diagnostic = event.get("diagnostic")
        if not diagnostic:
            lines.append(event.get("@message", ""))
            continue
        lines.append(f"{diagnostic.get('severity', 'error').capitalize()}: {diagnostic.get('summary', '')}")
        where = diagnostic.get("range") or {}
        if where.get("filename"):
            lines.append(f"  on {where['filename']} line {where.get('start', {}).get('line', '?')}")
        if diagnostic.get("detail"):
            lines.append(diagnostic["detail"])
    return "\n".join(lines)
