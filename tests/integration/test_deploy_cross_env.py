"""An image built for one environment is never deployed to another (issue 20).

The site service bakes PUBLIC_URL in (env_build_args). It is built for one sandbox environment
with a real build (git, Docker, the registry), then deployed to a second one: the deploy is
refused with one sentence naming the service, the environment it was built for and the build
that fixes it, before the emulator starts or any Terraform stack is planned. The environments
have names of their own, so this file runs beside the other sandbox tests on the shared engine.
"""

from __future__ import annotations

import json

import pytest

from tests.integration.conftest import write_config

pytestmark = pytest.mark.integration

BUILT_FOR, TARGET = "i20built", "i20other"

EXTRA = "".join(
    f"""
[environments.{name}]
sandbox = true

[environments.{name}.build_args]
PUBLIC_URL = "https://{name}.example"

[environments.{name}.roles.web]
ami = "ami-1e749f67"
services = ["site"]
"""
    for name in (BUILT_FOR, TARGET)
)


@pytest.fixture
def cross_env_project(project):
    write_config(project.root, project.registry.host, project.repos, extra=EXTRA)
    yield project
    if (project.root / ".damso" / "sandbox" / "server.json").exists():  # only if the refusal came too late
        project.damso("sandbox", "stop")


def test_image_built_for_one_environment_is_refused_by_another_before_any_plan(cross_env_project, monkeypatch):
    from damso_ops import config
    from damso_ops.deploy import request

    project = cross_env_project
    built = project.damso("build", "--ref", "main", "site", "--env", BUILT_FOR)
    assert built.exit_code == 0, built.output
    latest = json.loads((project.root / ".damso" / "builds" / "latest.json").read_text())
    site = latest["images"]["site"]
    assert site["env"] == BUILT_FOR and site["build_args"] == {"PUBLIC_URL": f"https://{BUILT_FOR}.example"}
    before = sorted(p.relative_to(project.root) for p in project.root.rglob("*"))

    for command in (("deploy", TARGET, "--yes"), ("plan", TARGET)):
        result = project.damso(*command)
        assert result.exit_code == 1, result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and "Traceback" not in result.output, result.output
        assert lines[0] == (
            f"Error: The site image was built for {BUILT_FOR}, so it would carry {BUILT_FOR}'s PUBLIC_URL "
            f"into {TARGET}; run 'damso build --ref main site --env {TARGET}', then deploy again."
        )

    after = sorted(p.relative_to(project.root) for p in project.root.rglob("*"))
    new = [p for p in after if p not in before and p.parts[:2] != (".damso", "logs")]
    assert new == []  # no emulator, no Terraform workspace, no release, no lock
    assert not (project.root / ".damso" / "sandbox").exists()
    assert not (project.root / ".damso" / "terraform").exists()

    # The environment it was built for passes the same check (offline: images, stacks, references).
    monkeypatch.delenv("DAMSO_STATE_DIR", raising=False)
    req = request.resolve(config.load(project.config), BUILT_FOR, None, None)
    assert set(req.images) == {"site"} and req.images["site"] == f"{site['image']}@{site['digest']}"

