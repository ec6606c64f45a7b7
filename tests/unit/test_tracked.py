"""No file of the package is git-ignored: the wheel builder (hatch) leaves ignored files out,
and a clean checkout would not have them (a `build/` pattern once hid damso_ops/images/)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_no_package_file_is_ignored():
    if not shutil.which("git") or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    files = [str(p.relative_to(ROOT)) for p in (ROOT / "damso_ops").rglob("*.py") if "__pycache__" not in p.parts]
    assert "damso_ops/images/__init__.py" in files
    found = subprocess.run(["git", "check-ignore", "--no-index", "--stdin"], cwd=ROOT, input="\n".join(files),
                           capture_output=True, text=True, check=False)  # fmt: skip
    assert found.returncode in (0, 1), found.stderr  # 1: nothing is ignored
    assert found.stdout.split() == []
