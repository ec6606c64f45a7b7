"""Terraform working copies: damso's terraform/ tree copied under .damso/, one per environment.

Terraform writes .terraform/ and plan files next to the code, so it never runs
inside the installed package. Providers, modules and locks are kept between runs.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from damso_ops import paths
from damso_ops.aws import AwsEndpoint
from damso_ops.deploy import terraform
from damso_ops.deploy.store import Layout


@dataclass(frozen=True)
class Workspace:
    root: Path  # .damso/terraform/<env>
    env: dict[str, str]  # process environment for terraform

    def stack_dir(self, stack: str) -> Path:
        return self.root / "stacks" / stack


def _sync_tree(src: Path, dst: Path) -> None:
    """Copy the tree (symlinked files as their content), keeping what terraform made
    (.terraform, locks, plans) and removing .tf files that are gone from damso's tree."""
    if dst.is_dir():
        for stale in dst.rglob("*.tf"):
            rel = stale.relative_to(dst)
            if ".terraform" not in rel.parts and stale.name != terraform.OVERRIDE_FILE and not (src / rel).exists():
                stale.unlink()
    for path in src.rglob("*"):
        if path.is_dir() or ".terraform" in path.parts or path.name.endswith(".tfstate"):
            continue
        if path.name == ".terraform.lock.hcl":
            continue
        target = dst / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.read_bytes() != path.read_bytes():
            shutil.copy2(path, target)


def prepare(state_dir: Path, env_name: str, aws: AwsEndpoint, state_bucket: str, stacks: list[str]) -> Workspace:
    root = state_dir / "terraform" / env_name
    src = paths.data_dir("terraform")
    _sync_tree(src / "modules", root / "modules")
    for stack in stacks:
        _sync_tree(src / "stacks" / stack, root / "stacks" / stack)
        stack_dir = root / "stacks" / stack
        (stack_dir / terraform.BACKEND_FILE).write_text(
            terraform.backend_hcl(state_bucket, Layout(env_name).state(stack), aws.region, aws.endpoint_url)
        )
        override = stack_dir / terraform.OVERRIDE_FILE
        if aws.emulated:
            override.write_text(terraform.override_tf(aws.endpoint_url))
        else:
            override.unlink(missing_ok=True)
    env = {**terraform.cli_env(paths.cache_dir() / "terraform"), **aws.process_env()}
    return Workspace(root, env)


def init_key(stack_dir: Path) -> str:
    """What terraform init depends on: the stack's and the modules' .tf files, and the backend config."""
    import hashlib

    digest = hashlib.sha256()
    modules = sorted((stack_dir.parent.parent / "modules").rglob("*.tf"))
    for path in sorted([*stack_dir.glob("*.tf"), stack_dir / terraform.BACKEND_FILE]) + modules:
        if path.is_file():
            digest.update(str(path.relative_to(stack_dir.parent.parent)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def inputs_text(values: dict) -> str:
    return json.dumps(values, indent=2, sort_keys=True) + "\n"


def write_inputs(ws: Workspace, stack: str, values: dict) -> None:
    path = ws.stack_dir(stack) / terraform.VARS_FILE
    text = inputs_text(values)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
