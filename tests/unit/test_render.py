"""damso render: every file a host of a role would get, with no AWS account; outputs from state
when it can be read, placeholders otherwise; images from the build manifest; secrets as names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from damso_ops.cli import app
from damso_ops.deploy import preview
from tests.support.moto_env import ARTIFACTS, put_state

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
SENTINEL = "sentinel-secret-value-0f3a9c"
ROLES = """
[environments.prod.roles.api]
services = ["api"]
secrets = ["API_JWT_SECRET"]
env = { PORT = "8080" }
[environments.prod.roles.web]
services = ["web"]
env = { API_URL = "http://${api.private_ip}:8080" }
"""


def offline_env(tmp_path: Path) -> dict:
    """No AWS account: no credentials anywhere, no metadata service to ask."""
    return {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None, "AWS_SESSION_TOKEN": None, "AWS_PROFILE": None,
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_CONFIG_FILE": str(tmp_path / "none"),
            "AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL": None, "DAMSO_STATE_DIR": None}  # fmt: skip


def project(tmp_path: Path, text: str | None = None) -> Path:
    root = tmp_path / "project"
    root.mkdir(exist_ok=True)
    (root / "damso.toml").write_text(text if text is not None else (ROOT / "damso.example.toml").read_text())
    return root


def invoke(root: Path, *args: str, env: dict | None = None):
    return runner.invoke(app, ["--config", str(root / "damso.toml"), "render", *args], env=env)


def test_the_example_renders_every_roles_files_offline_with_placeholders(tmp_path):
    root = project(tmp_path)
    secrets_dir = root / ".damso" / "secrets"
    secrets_dir.mkdir(parents=True)
    (secrets_dir / "prod.env").write_text(f"API_JWT_SECRET={SENTINEL}\n")  # a local secret is never rendered
    env = {**offline_env(tmp_path), "KMA_AUTH_KEY": SENTINEL}
    result = invoke(root, "prod", "--out", str(tmp_path / "out"), "--json", env=env)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    roles = data["roles"]
    assert set(roles) == set(preview.request.selected_roles("prod", _cfg(root).environments["prod"], []))
    for role, info in roles.items():
        names = {f["name"] for f in info["files"]}
        assert {"compose.yml", "role.env", "secrets.env", "user-data.sh"} <= names, role
        for f in info["files"]:
            assert Path(f["path"]).read_text().count(SENTINEL) == 0
    assert {"livekit.yaml.in", "livekit.yaml"} <= {f["name"] for f in roles["livekit"]["files"]}
    assert data["outputs"]["from_state"] == [] and "no AWS credentials" in data["outputs"]["note"]
    assert "<shared.artifact_bucket>" in (tmp_path / "out" / "api" / "user-data.sh").read_text()
    agent_env = (tmp_path / "out" / "agent" / "role.env").read_text()
    assert "=http://<api.private_ip>:8080\n" in agent_env
    api_secrets = (tmp_path / "out" / "api" / "secrets.env").read_text()
    assert "API_JWT_SECRET=<ssm:/damso/prod/api/API_JWT_SECRET>\n" in api_secrets
    livekit_yaml = (tmp_path / "out" / "livekit" / "livekit.yaml").read_text()
    assert '"<ssm:/damso/prod/livekit/LIVEKIT_API_KEY>": "<ssm:/damso/prod/livekit/LIVEKIT_API_SECRET>"' in livekit_yaml
    assert "${" not in livekit_yaml
    assert roles["api"]["not_built"] == ["api"] and roles["api"]["images"]["api"].endswith(":not-built")


def _cfg(root: Path):
    from damso_ops import config

    return config.load(root / "damso.toml")


def _manifest(path: Path, services: dict[str, str | None]) -> Path:
    images = {
        name: {"service": name, "repository": "app", "url": "file:///x", "ref": "main", "commit": "c" * 40,
               "image": f"registry.test/team/{name}", "tags": ["sha-cccccccccccc"], "digest": digest,
               "build_args": {}, "status": "built", "built_at": "2026-12-04T00:00:00+00:00"}
        for name, digest in services.items()
    }  # fmt: skip
    path.write_text(json.dumps({"id": "b1", "created": "2026-12-04T00:00:00+00:00", "env": None, "images": images}))
    return path


def test_images_are_pinned_from_the_build_manifest_and_unbuilt_ones_say_so(tmp_path, make_config):
    cfg = make_config(ROLES)
    manifest = _manifest(tmp_path / "build.json", {"api": "sha256:" + "a" * 64, "web": None})  # web: --no-push
    result = preview.preview(cfg, "prod", [], build_manifest=manifest, use_state=False)
    by_role = {r.role: r for r in result.roles}
    assert by_role["api"].images == {"api": "registry.test/team/api@sha256:" + "a" * 64}
    assert by_role["web"].not_built == ("web",) and by_role["web"].images["web"] == "registry.test/team/web:not-built"
    compose = {f.name: f.text for f in by_role["api"].files}["compose.yml"]
    assert "registry.test/team/api@sha256:" + "a" * 64 in compose
    assert result.build_manifest == str(manifest)


def test_outputs_come_from_state_when_it_can_be_read(aws, make_config):
    """An environment with credentials and state: the stacks applied give their outputs; the
    others stay placeholders; the webhooks developers added come from the artifact bucket."""
    s3 = aws.client("s3")
    put_state(s3, "shared", {"artifact_bucket": ARTIFACTS, "vpc_id": "vpc-1"})
    put_state(s3, "api", {"private_ip": "10.0.10.7", "instance_id": "i-1"})
    cfg = make_config(ROLES)
    result = preview.preview(cfg, "prod", ["web"], use_state=True)
    assert result.outputs.from_state == ("shared", "api") and result.outputs.placeholders == ("web",)
    assert result.outputs.note == "never applied"
    (web,) = result.roles
    files = {f.name: f for f in web.files}
    assert files["role.env"].text == "API_URL=http://10.0.10.7:8080\n"
    assert f"DAMSO_BUCKET={ARTIFACTS}\n" in files["user-data.sh"].text
    assert {f.delivery for f in web.files} == {preview.RELEASE, preview.HOST, preview.LAUNCH}


def test_no_state_bucket_means_placeholders_not_an_error(aws, make_config):
    result = preview.preview(make_config(ROLES), "prod", ["api"], use_state=True)
    assert result.outputs.from_state == () and "NoSuchBucket" in result.outputs.note


def test_a_second_render_replaces_its_own_files_and_keeps_others_out(tmp_path, make_config):
    cfg = make_config(ROLES)
    out = tmp_path / "out"
    preview.write(preview.preview(cfg, "prod", ["api"], use_state=False), out)
    (out / "api" / "stale.txt").write_text("left by an earlier render")
    marker = json.loads((out / "api" / preview.MARKER).read_text())
    (out / "api" / preview.MARKER).write_text(json.dumps({**marker, "files": [*marker["files"], "stale.txt"]}))
    preview.write(preview.preview(cfg, "prod", ["api"], use_state=False), out)
    assert sorted(p.name for p in (out / "api").iterdir()) == sorted(
        [preview.MARKER, "compose.yml", "role.env", "secrets.env", "user-data.sh"]
    )


@pytest.mark.parametrize(
    "args, prepare, expected",
    [
        (["prod", "nope"], None, "Unknown role 'nope' in prod (roles: agent, api, livekit, web)."),
        (["staging"], None, "Unknown environment 'staging'"),
        (["prod", "--build-manifest", "{tmp}/none.json"], None, "No build manifest at"),
        (["prod", "--out", "{tmp}/file"], "file", "--out {tmp}/file is a file, not a folder."),
        (["prod", "api", "--out", "{tmp}/mine"], "mine", "holds files damso render did not write"),
        (["prod", "api", "--out", ""], None, "must not be empty"),
    ],
)
def test_bad_input_is_one_sentence_and_writes_nothing(tmp_path, args, prepare, expected):
    root = project(tmp_path)
    (root / ".damso" / "logs").mkdir(parents=True)  # the log file is there from any earlier command
    (root / ".damso" / "logs" / "damso.log").write_text("")
    if prepare == "file":
        (tmp_path / "file").write_text("x")
    if prepare == "mine":
        (tmp_path / "mine" / "api").mkdir(parents=True)
        (tmp_path / "mine" / "api" / "notes.txt").write_text("mine")
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    result = invoke(root, *[a.replace("{tmp}", str(tmp_path)) for a in args], env=offline_env(tmp_path))
    assert result.exit_code != 0
    assert expected.replace("{tmp}", str(tmp_path)) in " ".join(result.output.split())
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) <= 2
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def test_help_has_examples():
    result = runner.invoke(app, ["render", "--help"])
    assert result.exit_code == 0 and "damso render prod --no-state" in result.output


# What the real apps read at the example's refs (grep process.env in ops-api at main and ops-web
# at main, os.getenv in ops-agent at v3), minus what the example says it leaves unset on purpose
# (OPENAI_* with AI_PROVIDER = "bedrock"; JWT_SECRET, a fallback of API_JWT_SECRET).
APP_VARIABLES = {
    "api": ["PORT", "LIVEKIT_URL", "LIVEKIT_PUBLIC_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "LIVEKIT_TOKEN_TTL",
            "API_JWT_SECRET", "API_JWT_TTL", "API_AUTH_REQUIRED", "CORS_ORIGIN", "APNS_ENV", "APNS_KEY_PATH",
            "APNS_KEY_ID", "APNS_TEAM_ID", "APNS_BUNDLE_ID", "APNS_VOIP_TOPIC", "KAKAO_CLIENT_ID",
            "KAKAO_CLIENT_SECRET", "GOOGLE_CLIENT_ID", "GOOGLE_CLIENT_SECRET", "AI_PROVIDER", "AI_MAX_TOKENS",
            "AI_INSTRUCTION", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "BEDROCK_MODEL",
            "DATABASE_URL", "REDIS_URL"],
    "agent": ["LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
              "AWS_DEFAULT_REGION", "REDIS_URL", "KMA_MCP_URL", "OPS_API_URL", "LOG_LEVEL", "AGENT_TIMEZONE",
              "LLM_PROVIDER", "LLM_MODEL", "LLM_TEMPERATURE", "LLM_BASE_URL", "AGENT_NAME", "MCP_ENABLED",
              "STT_PROVIDER", "STT_SERVER_URL", "API_BASE_URL", "API_INTERNAL_TOKEN", "KMA_AUTH_KEY",
              "RAG_MEMORY_SIMILARITY_THRESHOLD", "RAG_CHILD_CHUNK_SIZE", "RAG_CHILD_CHUNK_OVERLAP",
              "RAG_WINDOW_CONTEXT_CHARS"],
    "web": ["HOSTNAME", "PORT"],
}
WEB_BUILD_ARGS = ["NEXT_PUBLIC_API_BASE", "NEXT_PUBLIC_API_URL", "NEXT_PUBLIC_LIVEKIT_URL", "NEXT_PUBLIC_ROOM_NAME",
                  "NEXT_PUBLIC_NAVER_MAP_CLIENT_ID", "NEXT_PUBLIC_KAKAO_CLIENT_ID", "NEXT_PUBLIC_GOOGLE_CLIENT_ID"]


def test_the_examples_files_name_every_variable_the_real_apps_read(tmp_path):
    root = project(tmp_path)
    cfg = _cfg(root)
    result = preview.preview(cfg, "prod", [], use_state=False)
    for r in result.roles:
        if r.role not in APP_VARIABLES:
            continue
        files = {f.name: f.text for f in r.files}
        named = {line.split("=", 1)[0] for name in ("role.env", "secrets.env") for line in files[name].splitlines()
                 if line and not line.startswith("#")}  # fmt: skip
        assert set(APP_VARIABLES[r.role]) - named == set(), r.role
    assert cfg.services["web"].env_build_args == WEB_BUILD_ARGS
    assert set(WEB_BUILD_ARGS) <= set(cfg.environments["prod"].build_args)
    agent_env = {f.name: f.text for f in {r.role: r for r in result.roles}["agent"].files}["role.env"]
    assert "LLM_BASE_URL=http://ollama:11434/v1\n" in agent_env
    refs = {name: r.default_ref for name, r in cfg.repositories.items()}
    assert refs == {"ops-api": "main", "ops-web": "main", "ops-agent": "v3", "ops-agent-dev": "dev"}  # refs that exist


def test_the_model_volume_follows_the_ollama_image():
    """The agent's Ollama models live in a volume per image digest: a new image (other models)
    gets a new, empty volume that Docker fills from the image; a rollback finds its own."""
    import jinja2

    from damso_ops import paths
    from damso_ops.deploy import render

    old, new = "ghcr.io/team/ops-agent-ollama@sha256:" + "ab12" * 16, "ghcr.io/team/ops-agent-ollama@sha256:" + "cd34" * 16
    assert (render.image_key(old), render.image_key(new)) == ("ab12ab12ab12", "cd34cd34cd34")
    assert render.image_key("ghcr.io/team/ops-agent-ollama:not-built") == "ops-agent-ollama-not-built"
    text = (paths.data_dir("templates") / "compose" / "agent.yml.j2").read_text()
    jenv = jinja2.Environment(undefined=jinja2.Undefined)
    jenv.filters["image_key"] = render.image_key
    volumes = [line.strip() for line in text.splitlines() if "ollama-models-" in line and "{{" in line]
    rendered = [jenv.from_string(line).render(images={"ollama": new}) for line in volumes]
    assert rendered == ['volumes: ["ollama-models-cd34cd34cd34:/root/.ollama"]  # one per image: see below',
                        "ollama-models-cd34cd34cd34: {}"]  # fmt: skip
