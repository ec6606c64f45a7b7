"""The one adapter over Terraform (and python-terraform, unmaintained since 2019).

Builders return Commands; the runner executes them. Nothing else in damso
imports python_terraform.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from damso_ops.errors import DamsoError
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


def cli_env(home: Path) -> dict[str, str]:
    """Environment for every terraform run: damso's own CLI config (mirror or registry)."""
    home.mkdir(parents=True, exist_ok=True)
    rc = home / "terraformrc"
    text = cli_config_text(find_mirror())
    if not rc.is_file() or rc.read_text() != text:
        rc.write_text(text)
    plugin_cache = home / "plugin-cache"
    plugin_cache.mkdir(exist_ok=True)
    return {
        "TF_CLI_CONFIG_FILE": str(rc),
        "TF_PLUGIN_CACHE_DIR": str(plugin_cache),
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
        "CHECKPOINT_DISABLE": "1",
    }


def version_command(env: dict[str, str]) -> Command:
    return _tf("version", json=_flag(), env=env)


def _flag():
    from python_terraform import IsFlagged

    return IsFlagged


def version() -> str:
    if not shutil.which("terraform"):
        raise DamsoError("terraform is not on the PATH.", hint="Install Terraform 1.6 or newer.")
    from damso_ops.paths import cache_dir

    data = json.loads(run(version_command(cli_env(cache_dir() / "terraform"))).output)
    return data["terraform_version"]
