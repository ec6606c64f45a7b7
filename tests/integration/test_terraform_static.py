"""Every Terraform stack and module is formatted, valid, and its module tests pass."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from damso_ops import paths
from damso_ops.deploy import stackops, terraform
pytestmark = pytest.mark.integration

TREE = paths.data_dir("terraform")
STACKS = sorted(p.name for p in (TREE / "stacks").iterdir() if p.is_dir() and not p.name.startswith("_"))
MODULES = sorted(p.name for p in (TREE / "modules").iterdir() if p.is_dir())


@pytest.fixture(scope="module")
def tf(tmp_path_factory):
    """A copy of terraform/ (so .terraform/ is never written into the checkout) and the CLI env."""
    root = tmp_path_factory.mktemp("tf") / "terraform"
    shutil.copytree(TREE, root, ignore=shutil.ignore_patterns(".terraform", ".terraform.lock.hcl"))
    return root, terraform.cli_env(paths.cache_dir() / "terraform")


def tf_run(env: dict, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """terraform with damso's environment, whose plugin cache deploys in other test files use at the
    same time: an init takes the cache's lock as damso's inits do, anything else shares it (an init
    rewrites a cached provider that a plan or show elsewhere is reading; deploy/stackops.py)."""
    import os

    with stackops.initialising(env) if args[0] == "init" else stackops.using_cache(env):
        return subprocess.run(["terraform", *args], cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True)


def test_expected_stacks_and_modules_exist():
    assert {"shared", "livekit", "api", "web", "agent"} <= set(STACKS)
    assert {"network", "artifacts", "host"} <= set(MODULES)


def test_fmt(tf):
    root, env = tf
    result = tf_run(env, root, "fmt", "-check", "-recursive", "-no-color")
    assert result.returncode == 0, f"not formatted: {result.stdout}{result.stderr}"


@pytest.mark.parametrize("kind,name", [("stacks", s) for s in STACKS] + [("modules", m) for m in MODULES])
def test_validate(tf, kind, name):
    root, env = tf
    folder = root / kind / name
    init = tf_run(env, folder, "init", "-backend=false", "-input=false", "-no-color")
    assert init.returncode == 0, init.stdout + init.stderr
    result = tf_run(env, folder, "validate", "-no-color")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "kind,name",
    [("modules", m) for m in MODULES if (TREE / "modules" / m / "tests").is_dir()]
    + [("stacks", s) for s in STACKS if (TREE / "stacks" / s / "tests").is_dir()],
)
def test_module_tests(tf, kind, name):
    root, env = tf
    folder = root / kind / name
    assert list((folder / "tests").glob("*.tftest.hcl")), f"{kind} {name} has no tests"
    init = tf_run(env, folder, "init", "-backend=false", "-input=false", "-no-color")
    assert init.returncode == 0, init.stdout + init.stderr
    result = tf_run(env, folder, "test", "-no-color")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 failed" in result.stdout


def test_every_module_has_tests():
    assert [m for m in MODULES if not list((TREE / "modules" / m / "tests").glob("*.tftest.hcl"))] == []
