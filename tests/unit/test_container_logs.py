"""Containers log to their role's CloudWatch Logs group through Docker's awslogs driver: what the
compose files say, with CloudWatch on and off, and in a sandbox (the emulator's endpoint, and
credentials from the emulator's own route)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from damso_ops import config
from damso_ops.deploy import container_logs, render
from damso_ops.emulator import OneAtATime

ROOT = Path(__file__).resolve().parents[2]
IMAGES = {name: f"registry.test/team/{name}@sha256:{'a' * 64}" for name in
          ("api", "web", "agent", "stt", "ollama", "kma-mcp", "ai-server", "stt-dev", "kma-mcp-dev", "agent-dev")}  # fmt: skip


def example(extra: str = "") -> config.Config:
    return config.parse((ROOT / "damso.example.toml").read_text() + extra, ROOT / "damso.toml")


def services(cfg: config.Config, env: str, role: str, endpoint: str | None = None, shape=None) -> dict:
    found = cfg.environments[env].roles[role]
    if shape:  # another compose template for the role, with what it needs
        found = found.model_copy(update=shape)
    files = render.render_files(cfg, env, role, found, IMAGES, _outputs(cfg, env), "b", aws_endpoint=endpoint)
    return yaml.safe_load(files["compose.yml"])["services"]


def _outputs(cfg: config.Config, env: str) -> dict:
    """Every ${stack.output} the environment's roles name, with a value."""
    found: dict = {}
    for role in cfg.environments[env].roles.values():
        for value in role.env.values():
            for stack, name in render.REF.findall(value):
                found.setdefault(stack, {})[name] = f"<{stack}.{name}>"
    return found


def test_every_service_of_the_example_logs_to_its_roles_group_one_stream_per_instance_and_container():
    cfg = example()
    seen = set()
    for env_name, env in cfg.environments.items():
        for role in env.roles:
            for name, service in services(cfg, env_name, role).items():
                seen.add(name)
                assert service["logging"] == {"driver": "awslogs", "options": {
                    "awslogs-region": env.region,
                    "awslogs-group": f"/damso/{cfg.project.name}-{env_name}/{role}",
                    "awslogs-stream": "${DAMSO_INSTANCE_ID:-unknown}/" + name,
                    "awslogs-force-flush-interval-seconds": "2",
                    "mode": "non-blocking",
                    "max-buffer-size": container_logs.MAX_BUFFER,
                }}, (env_name, role, name)  # fmt: skip
    dev = {"compose_template": "compose/agent-dev.yml.j2", "services": ["agent-dev", "ai-server", "stt-dev", "kma-mcp-dev"],
           "env": {k: "1" for k in ("VLLM_IMAGE", "LLM_MODEL", "VLLM_MAX_MODEL_LEN", "VLLM_GPU_MEMORY_UTILIZATION",
                                    "VLLM_TOOL_CALL_PARSER")}}  # the agent's dev shape  # fmt: skip
    for name, service in services(cfg, "prod", "agent", shape=dev).items():
        seen.add(name)
        assert service["logging"]["options"]["awslogs-stream"] == "${DAMSO_INSTANCE_ID:-unknown}/" + name
    assert {"api", "web", "livekit", "caddy", "agent", "stt", "ollama", "vllm", "ai-server"} <= seen  # every template


def test_the_group_is_named_as_terraform_names_it():
    main = (ROOT / "terraform" / "modules" / "host" / "main.tf").read_text()
    assert 'log_group  = "/damso/${var.project}-${var.env}/${var.role}"' in main
    assert container_logs.log_group("damso", "prod", "api") == "/damso/damso-prod/api"
    assert container_logs.split_stream(container_logs.stream_name("i-0abc", "api")) == ("i-0abc", "api")


def test_cloudwatch_off_keeps_logs_on_the_host_rotated():
    cfg = example("\n[environments.prod.logs]\ncloudwatch = false\n")
    for name, service in services(cfg, "prod", "api").items():
        assert service["logging"] == {"driver": "json-file", "options": {"max-size": "20m", "max-file": "5"}}


def test_a_sandbox_sends_to_the_emulator_with_credentials_from_its_route():
    cfg = example()
    (api,) = services(cfg, "prod", "api", endpoint="http://127.0.0.1:4566").values()
    options = api["logging"]["options"]
    assert options["awslogs-endpoint"] == "http://127.0.0.1:4566"
    # Docker puts http://169.254.170.2 in front: the user part of a URL whose host is the emulator
    assert "http://169.254.170.2" + options["awslogs-credentials-endpoint"] == \
        "http://169.254.170.2@127.0.0.1:4566/damso-sandbox/awslogs-credentials"


def test_the_emulator_answers_the_credentials_route_without_entering_moto():
    def moto(environ, start_response):
        raise AssertionError("the credentials route must not reach moto")

    answered = {}
    body = OneAtATime(moto)({"PATH_INFO": container_logs.CREDENTIALS_PATH, "REQUEST_METHOD": "GET"},
                            lambda status, headers: answered.update(status=status))  # fmt: skip
    creds = json.loads(b"".join(body))
    assert answered["status"] == "200 OK" and {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"} <= set(creds)


def test_retention_must_be_one_cloudwatch_keeps():
    import pytest

    with pytest.raises(config.ConfigError, match=r"environments\.prod\.logs\.retention_days: 31 is not a CloudWatch Logs retention"):
        example("\n[environments.prod.logs]\nretention_days = 31\n")
    assert example("\n[environments.prod.logs]\nretention_days = 365\n").environments["prod"].logs.retention_days == 365
