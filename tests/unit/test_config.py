from pathlib import Path

import pytest

from damso_ops import config
from damso_ops.errors import ConfigError, UsageError

ROOT = Path(__file__).resolve().parents[2]

MINIMAL = """
[registry]
host = "127.0.0.1:5000"
namespace = "team"

[repositories.app]
url = "file:///tmp/app.git"

[services.app]
repo = "app"
image = "app"
"""


def parse(text: str):
    return config.parse(text, Path("/x/damso.toml"))


def test_example_config_describes_the_real_system():
    cfg = config.load(ROOT / "damso.example.toml")
    assert set(cfg.repositories) == {"ops-api", "ops-web", "ops-agent", "ops-agent-dev"}  # ops-agent at v3 and at dev
    assert {r.url for r in cfg.repositories.values()} == {f"https://github.com/Namanmoo-Damso/{n}.git" for n in ("ops-api", "ops-web", "ops-agent")}
    assert {s.image for s in cfg.services.values()} == {
        "ops-api", "ops-web", "ops-agent", "ops-agent-stt", "ops-agent-ollama", "ops-agent-kma-mcp", "ops-agent-ai-server",
    }
    assert cfg.services["stt"].context == "stt"
    assert "NEXT_PUBLIC_API_BASE" in cfg.services["web"].env_build_args
    assert cfg.registry.image_repo("ops-api") == "ghcr.io/namanmoo-damso/ops-api"
    prod = cfg.environments["prod"]
    api_grants = prod.roles["api"].aws.lines()[0]  # what `damso plan prod` prints for the api (AI_PROVIDER = "bedrock")
    assert api_grants.startswith("allow bedrock:InvokeModel, bedrock:InvokeModelWithResponseStream on ")
    assert "arn:aws:bedrock:us-east-1:*:inference-profile/global.anthropic.claude-sonnet-4-5-20250929-v1:0" in api_grants
    assert prod.roles["agent"].aws.lines()[0] == "allow polly:SynthesizeSpeech, polly:DescribeVoices on *"  # TTS is Polly
    assert prod.roles["api"].aws.containers and not prod.roles["web"].aws.containers  # hop limit 2 only where needed
    assert prod.waves() == [["livekit"], ["api"], ["web"], ["agent"]] and prod.zones() == ["ap-northeast-2a", "ap-northeast-2c"]


def test_minimal_config_gets_defaults():
    cfg = parse(MINIMAL)
    assert cfg.repositories["app"].default_ref == "main"
    assert cfg.services["app"].dockerfile == "Dockerfile"
    assert cfg.registry.username_env == "GHCR_USERNAME"
    assert cfg.state_dir == Path("/x/.damso")


@pytest.mark.parametrize(
    "text, expected",
    [
        (MINIMAL.replace('namespace = "team"', ""), "/x/damso.toml: registry.namespace is required."),
        (MINIMAL + "\n[services.app.extra]\n", "/x/damso.toml: services.app.extra is not a known setting"),
        (MINIMAL.replace('repo = "app"', 'repo = "nope"'), "services.app.repo: repository 'nope' is not defined"),
        (MINIMAL + 'env_build_args = ["X"]\n[environments.prod]\n', "environments.prod.build_args.X"),
        (MINIMAL.replace('image = "app"', 'image = "App"'), "services.app.image: 'App' must be lowercase"),
        (MINIMAL + 'context = "../other"\n', "context must be a path inside the repository"),
        ("[registry\n", "/x/damso.toml is not valid TOML"),
    ],
)
def test_errors_name_the_file_and_key_path(text, expected):
    with pytest.raises(ConfigError) as err:
        parse(text)
    assert expected in err.value.message


def test_find_walks_up_from_a_subfolder(tmp_path, monkeypatch):
    monkeypatch.delenv("DAMSO_CONFIG", raising=False)
    (tmp_path / "damso.toml").write_text(MINIMAL)
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    assert config.find(sub) == tmp_path.resolve() / "damso.toml"


def test_find_without_a_file_says_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("DAMSO_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="No damso.toml found") as err:
        config.find(tmp_path)
    assert "damso init --example damso" in err.value.hint


def test_unknown_service_and_environment():
    cfg = parse(MINIMAL)
    with pytest.raises(UsageError, match="Unknown service 'web' \\(known: app\\)"):
        cfg.select_services(["web"])
    with pytest.raises(UsageError, match="Unknown environment 'prod'"):
        cfg.environment("prod")
