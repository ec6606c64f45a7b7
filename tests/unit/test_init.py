"""damso init: the shipped example, a skeleton's pieces (pure logic), and refusals."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from damso_ops import config, paths, scaffold
from damso_ops.cli import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_example_writes_the_shipped_file_which_loads(tmp_path):
    path = tmp_path / "damso.toml"
    result = runner.invoke(app, ["--config", str(path), "init", "--example", "damso"])
    assert result.exit_code == 0, result.output
    assert path.read_text() == (ROOT / "damso.example.toml").read_text() == paths.example("damso").read_text()
    assert set(config.load(path).environments) >= {"prod", "dev"}


@pytest.mark.parametrize(
    "args, expected",
    [
        ([], "Pass --example damso (the Damso system) or --repo URL"),
        (["--example", "nope"], "--example 'nope' is not a shipped example (examples: damso)."),
        (["--example", "damso", "--repo", "file:///x.git"], "Pass either --example or --repo, not both."),
        (["--ref", "v3"], "--ref is for the repositories given with --repo."),
        (["--repo", "-x"], "--repo '-x' starts with '-'"),
        (["--repo", "file:///a/api.git", "--repo", "file:///b/api.git"], "would both be repository 'api'"),
        (["--repo", "file:///a/api.git", "--ref", "web=dev"], "--ref web=dev: unknown repository 'web' (known: api)."),
        (["--repo", ""], "must not be empty"),
    ],
)
def test_bad_input_is_one_sentence_and_writes_nothing(tmp_path, args, expected):
    path = tmp_path / "damso.toml"
    result = runner.invoke(app, ["--config", str(path), "init", *args])
    assert result.exit_code == 2
    assert expected in " ".join(result.output.split()) and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_an_existing_file_is_never_overwritten(tmp_path):
    path = tmp_path / "damso.toml"
    path.write_text("# mine\n")
    result = runner.invoke(app, ["--config", str(path), "init", "--example", "damso"])
    assert result.exit_code == 2
    assert f"{path} already exists; damso init never overwrites it" in " ".join(result.output.split())
    assert path.read_text() == "# mine\n"


def test_missing_config_names_damso_init(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DAMSO_CONFIG", raising=False)
    result = runner.invoke(app, ["status", "prod"])
    assert result.exit_code == 2 and "damso init --example damso" in " ".join(result.output.split())


def test_dockerfile_args_with_and_without_defaults():
    text = (
        "ARG BASE=python:3.12\nFROM ${BASE}\n"
        "ARG NEXT_PUBLIC_API_URL \\\n    NEXT_PUBLIC_ROOM_NAME=demo-room\n"
        "arg lower=\"quoted\"  # a comment ARG NOT_THIS\n"
        "ARG TARGETARCH\nARG BASE=other\n"
    )
    assert scaffold.dockerfile_args(text) == (
        scaffold.BuildArg("BASE", "python:3.12"),
        scaffold.BuildArg("NEXT_PUBLIC_API_URL", None),
        scaffold.BuildArg("NEXT_PUBLIC_ROOM_NAME", "demo-room"),
        scaffold.BuildArg("lower", "quoted"),
    )


def test_service_names_follow_the_repository_and_the_dockerfiles_folder():
    d = scaffold.Dockerfile
    assert scaffold.service_name("ops-agent", d(".", "Dockerfile", ())) == "ops-agent"
    assert scaffold.service_name("ops-agent", d("stt", "Dockerfile", ())) == "ops-agent-stt"
    assert scaffold.service_name("app", d("svc/api", "Dockerfile.prod", ())) == "app-svc-api-prod"
    assert scaffold.repo_name("git@github.com:Namanmoo-Damso/Ops-API.git") == "ops-api"
    assert scaffold.registry_of(["https://github.com/Namanmoo-Damso/ops-api.git"]) == ("ghcr.io", "namanmoo-damso")


def test_a_skeleton_loads_and_asks_each_environment_for_args_without_default(tmp_path):
    scans = [
        scaffold.RepoScan("web", "https://github.com/Org/web.git", "dev", "a" * 40, (
            scaffold.Dockerfile(".", "Dockerfile", (scaffold.BuildArg("NEXT_PUBLIC_API_URL", None),
                                                    scaffold.BuildArg("NODE_VERSION", "20"))),)),
        scaffold.RepoScan("docs", "https://github.com/Org/docs.git", "main", "b" * 40, ()),
    ]  # fmt: skip
    text = scaffold.skeleton(scans, "shop", now=datetime(2026, 12, 4, tzinfo=timezone.utc))
    cfg = config.parse(text, tmp_path / "damso.toml")
    assert cfg.project.name == "shop" and cfg.registry.image_repo("web") == "ghcr.io/org/web"
    assert cfg.repositories["web"].default_ref == "dev" and cfg.services["web"].env_build_args == ["NEXT_PUBLIC_API_URL"]
    assert cfg.environments["prod"].build_args == {"NEXT_PUBLIC_API_URL": ""}
    assert '# build_args = { NODE_VERSION = "20" }' in text
    assert "No Dockerfile was found in docs at main" in text
