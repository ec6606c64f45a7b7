"""An installed damso (from a wheel, not a checkout) finds its terraform/, templates/ and example,
and a user who only installed the wheel can start: damso init, then damso render."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
UV = str(ROOT / "scripts" / "uv.sh")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # uv (the project's pinned one) builds the wheel as `pip wheel` would: hatchling in an isolated
    # build environment. The project's .venv has no pip, as uv makes it.
    out = tmp_path_factory.mktemp("dist")
    build = subprocess.run([UV, "build", "-q", "--wheel", "--out-dir", str(out), str(ROOT)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    (found,) = out.glob("damso_ops-*.whl")
    return found


def test_wheel_carries_terraform_and_templates(tmp_path, wheel):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    names = zipfile.ZipFile(wheel).namelist()
    assert "damso_ops/_data/terraform/stacks/shared/main.tf" in names
    assert "damso_ops/_data/templates/host/reconcile.py" in names
    assert "damso_ops/_data/damso.example.toml" in names
    assert not [n for n in names if "__pycache__" in n or ".terraform/" in n]
    code = (
        "from damso_ops import paths; from damso_ops.deploy import render;"
        "print(paths.data_dir('terraform')); print(paths.data_dir('templates')); print(paths.example('damso'));"
        "print(len(render.reconcile_source()) > 1000)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})  # fmt: skip
    assert out.returncode == 0, out.stderr
    terraform_dir, templates_dir, example, ok = out.stdout.split()
    assert terraform_dir == str(site / "damso_ops" / "_data" / "terraform")
    assert templates_dir == str(site / "damso_ops" / "_data" / "templates")
    assert example == str(site / "damso_ops" / "_data" / "damso.example.toml")
    assert ok == "True"


def test_from_the_wheel_in_an_empty_venv_init_then_render_work_in_an_empty_folder(tmp_path, wheel):
    """What a user who only ran `pip install damso-ops` does first: no checkout, no damso.toml,
    no AWS account. The dependencies come from uv's cache (offline), as the project's .venv has them."""
    venv = tmp_path / "venv"
    made = subprocess.run([UV, "venv", "-q", str(venv)], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    installed = subprocess.run([UV, "pip", "install", "-q", "--offline", "--python", str(venv / "bin" / "python"), str(wheel)],
                               capture_output=True, text=True)  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    work = tmp_path / "empty"
    work.mkdir()
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DAMSO_"))}
    env = {**keep, "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_CONFIG_FILE": str(tmp_path / "none"),
           "AWS_EC2_METADATA_DISABLED": "true", "PYTHONPATH": ""}  # fmt: skip
    damso = str(venv / "bin" / "damso")
    init = subprocess.run([damso, "init", "--example", "damso"], cwd=work, env=env, capture_output=True, text=True)
    assert init.returncode == 0, init.stderr
    assert (work / "damso.toml").is_file()
    rendered = subprocess.run([damso, "render", "prod", "--out", str(tmp_path / "out")], cwd=work, env=env,
                              capture_output=True, text=True)  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr
    for role in ("api", "web", "agent", "livekit"):
        assert (tmp_path / "out" / role / "compose.yml").is_file() and (tmp_path / "out" / role / "user-data.sh").is_file()
    again = subprocess.run([damso, "init", "--example", "damso"], cwd=work, env=env, capture_output=True, text=True)
    assert again.returncode == 2 and "already exists" in again.stderr
