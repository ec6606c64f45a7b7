"""An installed damso (from a wheel, not a checkout) finds its terraform/ and templates/."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_wheel_carries_terraform_and_templates(tmp_path):
    # uv (the project's pinned one) builds the wheel as `pip wheel` would: hatchling in an isolated
    # build environment. The project's .venv has no pip, as uv makes it.
    build = subprocess.run(
        [str(ROOT / "scripts" / "uv.sh"), "build", "-q", "--wheel", "--out-dir", str(tmp_path / "dist"), str(ROOT)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    (wheel,) = (tmp_path / "dist").glob("damso_ops-*.whl")
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    names = zipfile.ZipFile(wheel).namelist()
    assert "damso_ops/_data/terraform/stacks/shared/main.tf" in names
    assert "damso_ops/_data/templates/host/reconcile.py" in names
    assert not [n for n in names if "__pycache__" in n or ".terraform/" in n]
    code = (
        "from damso_ops import paths; from damso_ops.deploy import render;"
        "print(paths.data_dir('terraform')); print(paths.data_dir('templates'));"
        "print(len(render.reconcile_source()) > 1000)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})  # fmt: skip
    assert out.returncode == 0, out.stderr
    terraform_dir, templates_dir, ok = out.stdout.split()
    assert terraform_dir == str(site / "damso_ops" / "_data" / "terraform")
    assert templates_dir == str(site / "damso_ops" / "_data" / "templates")
    assert ok == "True"
