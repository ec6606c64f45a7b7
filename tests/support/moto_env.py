"""Shared pieces of the unit tests of the middle (deploy pipeline, releases, operate) that run
against in-process moto: the names moto gives, a small project config, hand-written reports.
The fixtures over them are in tests/unit/conftest.py."""

from __future__ import annotations

import json
from pathlib import Path

from damso_ops.deploy.store import Layout, ReleaseStore

ACCOUNT = "123456789012"  # what moto's STS answers
REGION = "us-east-1"  # not a sandbox environment: no emulator process starts
ARTIFACTS = f"unit-prod-artifacts-{ACCOUNT}"
STATE = f"unit-prod-tfstate-{ACCOUNT}"

BASE_TOML = """
[project]
name = "unit"
[registry]
host = "registry.test"
namespace = "team"
[repositories.app]
url = "file:///nonexistent.git"
[services.api]
repo = "app"
image = "api"
[services.web]
repo = "app"
image = "web"
[environments.prod]
region = "us-east-1"
"""


def put_report(store: ReleaseStore, instance: str, **report) -> None:
    """A host's report, as its reconcile unit writes it."""
    store.write(store.keys.report(instance), json.dumps(report).encode())


def project_templates(root: Path, templates: dict[str, str]) -> None:
    """The project's own templates/ (they win over damso's, file by file)."""
    for name, text in templates.items():
        path = root / "templates" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def put_state(s3, stack: str, outputs: dict | None, resources: bool = True) -> None:
    """A stack's Terraform state object in prod's state bucket (outputs None: destroyed)."""
    if STATE not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=STATE)
    body = {"version": 4, "resources": [{"type": "x"}] if resources and outputs is not None else [],
            "outputs": {k: {"value": v, "type": "string"} for k, v in (outputs or {}).items()}}  # fmt: skip
    s3.put_object(Bucket=STATE, Key=Layout("prod").state(stack), Body=json.dumps(body).encode())
