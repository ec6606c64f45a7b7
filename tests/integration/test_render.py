"""`damso render` through the installed console script, with no AWS account: every compose file it
writes for the example's environments passes the compose specification (Debian's docker-compose)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
DAMSO = str(Path(sys.executable).parent / "damso")
NO_AWS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL",
          "DAMSO_STATE_DIR", "DAMSO_CONFIG")  # fmt: skip


def offline(tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in NO_AWS}
    return {**env, "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_CONFIG_FILE": str(tmp_path / "none"),
            "AWS_EC2_METADATA_DISABLED": "true"}  # fmt: skip


def compose_config(folder: Path) -> subprocess.CompletedProcess:
    compose = shutil.which("docker-compose")
    assert compose, "docker-compose (Debian) is installed by make setup"
    return subprocess.run([compose, "-f", "compose.yml", "config", "-q"], cwd=folder, capture_output=True, text=True)


@pytest.mark.parametrize("env_name", ["prod", "dev"])
def test_every_rendered_compose_file_passes_docker_compose_config(tmp_path, env_name):
    shutil.copy(ROOT / "damso.example.toml", tmp_path / "damso.toml")
    out = tmp_path / "out"
    result = subprocess.run([DAMSO, "render", env_name, "--out", str(out), "--json"], cwd=tmp_path,
                            env=offline(tmp_path), capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    roles = json.loads(result.stdout)["roles"]
    assert roles
    for role in roles:
        checked = compose_config(out / role)
        assert checked.returncode == 0, f"{role}: {checked.stderr}"
        assert "${" not in (out / role / "role.env").read_text()  # every ${stack.output} became a value or <stack.output>


def test_the_agent_switches_to_ops_agents_dev_shape_as_data(tmp_path):
    """The example's documented switch (compose_template, services, env) renders a compose file
    that docker-compose accepts: vLLM, ai-server on 8001, kma-mcp on 8002, STT on 8003."""
    import yaml

    from damso_ops.deploy import preview
    from tests.support import example

    cfg = example.with_agent_dev(example.load())
    result = preview.preview(cfg, "prod", ["agent"], use_state=False)
    preview.write(result, tmp_path)
    compose = yaml.safe_load((tmp_path / "agent" / "compose.yml").read_text())
    assert set(compose["services"]) == {"vllm", "ai-server", "stt", "kma-mcp", "agent", "transcript-storage"}
    assert set(compose["services"]["agent"]["depends_on"]) == {"vllm", "ai-server", "stt"}
    assert "--model" in compose["services"]["vllm"]["command"] and "Qwen/Qwen3-8B-AWQ" in compose["services"]["vllm"]["command"]
    role_env = (tmp_path / "agent" / "role.env").read_text()
    assert "LLM_BASE_URL=http://vllm:8000/v1\n" in role_env and "KMA_MCP_URL=http://kma-mcp:8002/sse\n" in role_env
    assert result.roles[0].not_built == ("agent-dev", "ai-server", "stt-dev", "kma-mcp-dev")
    checked = compose_config(tmp_path / "agent")
    assert checked.returncode == 0, checked.stderr
