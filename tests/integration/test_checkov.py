"""checkov over terraform/: no failed check, and every skip is inline, justified and still needed.

checkov lives in its own virtualenv (it pins many libraries), where
scripts/setup.sh installs it: ${DAMSO_TEST_CACHE:-~/.cache/damso-tests}/checkov-venv.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.support.daemons import CACHE

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "terraform"
CHECKOV = CACHE / "checkov-venv" / "bin" / "checkov"
SKIP = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?$")
MIN_REASON = 40  # characters: a reason says why, not just "not needed"


@pytest.fixture(scope="module")
def report() -> dict:
    assert CHECKOV.exists(), f"checkov is not installed at {CHECKOV}: run scripts/setup.sh"
    result = subprocess.run(
        [str(CHECKOV), "-d", str(TERRAFORM), "--framework", "terraform", "--compact", "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},  # no calls home: this machine may have no internet
    )
    assert result.stdout.strip(), f"checkov printed nothing (exit {result.returncode}): {result.stderr[-2000:]}"
    data = json.loads(result.stdout)
    reports = data if isinstance(data, list) else [data]
    (terraform,) = [r for r in reports if r.get("check_type") == "terraform"]
    return terraform


def skip_comments() -> list[tuple[str, int, str, str]]:
    """(file relative to terraform/, line, check id, reason) of every inline skip."""
    found = []
    for tf in sorted(TERRAFORM.rglob("*.tf")):
        if tf.is_symlink() or ".terraform" in tf.parts:
            continue  # stacks/<role>/host.tf and friends link to stacks/_common
        for number, line in enumerate(tf.read_text().splitlines(), 1):
            if "checkov:skip" in line:
                match = SKIP.search(line.strip())
                assert match, f"{tf.relative_to(TERRAFORM)}:{number}: malformed skip comment: {line.strip()}"
                found.append((str(tf.relative_to(TERRAFORM)), number, match.group(1), (match.group(2) or "").strip()))
    return found


def test_checkov_scanned_everything(report):
    summary = report["summary"]
    assert summary["parsing_errors"] == 0, summary
    assert summary["resource_count"] > 50 and summary["passed"] > 100, summary


def test_no_failed_check(report):
    failed = report["results"].get("failed_checks", [])
    lines = [
        f"{f['check_id']} {f['check_name']}\n    {f['resource']} at terraform{f['file_path']}:{f['file_line_range'][0]}"
        for f in failed
    ]
    assert not failed, f"{len(failed)} failed checkov check(s); fix them or skip inline with a reason:\n" + "\n".join(lines)


def test_every_skip_comment_has_a_reason():
    skips = skip_comments()
    assert skips, "no inline skips found: the scan of terraform/ is broken"
    short = [f"{path}:{line} {check}: {reason!r}" for path, line, check, reason in skips if len(reason) < MIN_REASON]
    assert not short, "every checkov:skip needs a reason a reviewer can agree with:\n" + "\n".join(short)


def test_every_skip_checkov_reports_carries_its_reason(report):
    skipped = report["results"].get("skipped_checks", [])
    assert len(skipped) == report["summary"]["skipped"]
    bare = [f"{s['check_id']} {s['resource']}" for s in skipped if not s["check_result"].get("suppress_comment", "").strip()]
    assert not bare, "skipped without a reason:\n" + "\n".join(bare)


def test_no_stale_skip(report):
    """Each inline skip still suppresses a check that would otherwise run on that file."""
    suppressed = {(s["file_path"].lstrip("/"), s["check_id"]) for s in report["results"].get("skipped_checks", [])}
    stale = [f"{path}:{line} {check}" for path, line, check, _ in skip_comments() if (path, check) not in suppressed]
    assert not stale, "these skips suppress nothing (remove them):\n" + "\n".join(stale)


def test_the_readme_lists_every_skip():
    readme = (TERRAFORM / "README.md").read_text()
    missing = sorted({check for _, _, check, _ in skip_comments() if not re.search(rf"\b{check}\b", readme)})
    assert not missing, f"terraform/README.md does not list these skipped checks: {', '.join(missing)}"
