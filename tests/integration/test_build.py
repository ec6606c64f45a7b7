"""damso build against a real Docker engine, a registry with htpasswd auth and real git repos."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from damso_ops.images import registry_api
from tests.integration.conftest import git_sha

pytestmark = pytest.mark.integration


def run_in(client, image: str, *cmd: str) -> str:
    return client.containers.run(image, list(cmd), remove=True).decode()


def pull_back(docker_client, registry, ref: str):
    """Remove the local copy and pull the image from the registry by digest."""
    repo, digest = ref.split("@")
    for image in docker_client.images.list(name=repo):
        docker_client.images.remove(image.id, force=True)
    auth = {"username": registry.username, "password": registry.password}
    return docker_client.images.pull(repo, tag=digest, auth_config=auth)


def test_build_by_tag_pushes_labelled_images_and_records_digests(project, docker_client):
    result, data = project.damso_json("build", "--ref", "v1", "api", "worker")
    assert result.exit_code == 0, result.output
    sha = git_sha(project.repos["app"], "v1")
    api, worker = data["images"]["api"], data["images"]["worker"]
    assert api["commit"] == worker["commit"] == sha
    assert api["status"] == "built" and api["tags"] == [f"sha-{sha[:12]}", "v1"]
    assert api["digest"].startswith("sha256:")
    assert set(data["images"]) == {"api", "worker"}  # the subset only

    image = pull_back(docker_client, project.registry, f"{api['image']}@{api['digest']}")
    labels = image.labels
    assert labels["org.opencontainers.image.revision"] == sha
    assert labels["org.opencontainers.image.source"] == f"file://{project.repos['app']}"
    assert labels["org.opencontainers.image.created"]
    assert run_in(docker_client, image.id, "/bin/busybox", "cat", "/content.txt", "/built") == "one\nbuilt\n"
    worker_image = pull_back(docker_client, project.registry, f"{worker['image']}@{worker['digest']}")
    assert run_in(docker_client, worker_image.id, "/bin/busybox", "cat", "/job.txt") == "worker\n"
    # The manifest on disk says the same as --json.
    assert Path(data["path"]).is_file()


def test_second_identical_run_builds_and_pushes_nothing(project, docker_client, tmp_path):
    first, data1 = project.damso_json("build", "--ref", "v2", "api")
    assert first.exit_code == 0, first.output
    shutil.rmtree(tmp_path / "cache" / "repos")  # the registry is asked before anything is fetched
    second, data2 = project.damso_json("build", "--ref", "v2", "api")
    assert second.exit_code == 0, second.output
    assert data2["images"]["api"]["status"] == "skipped"
    assert data2["images"]["api"]["digest"] == data1["images"]["api"]["digest"]
    assert "pushing" not in second.stderr and "building" not in second.stderr and "fetching" not in second.stderr
    assert not list((tmp_path / "cache" / "repos").glob("app-*"))
    # The registry's own API answered (registry_api), not the engine.
    log = (project.root / ".damso" / "logs" / "damso.log").read_text()
    assert f"registry API: team/api:{data2['images']['api']['tags'][0]} is {data2['images']['api']['digest']}" in log
    assert "asking through the engine" not in log


def test_the_registry_api_answers_as_the_engine_does(project, docker_client):
    """registry_api.Reader against the real registry (htpasswd: Basic auth): the digest the engine
    gives for a tag that is there, None for a tag or an image that is not, and no answer with a
    wrong password (the engine is asked then, and names the refusal)."""
    result, data = project.damso_json("build", "--ref", "v1", "api")
    assert result.exit_code == 0, result.output
    api, reg = data["images"]["api"], project.registry
    auth = {"username": reg.username, "password": reg.password}
    local = {"DOCKER_HOST": project.env["DOCKER_HOST"]}
    reader = registry_api.Reader(reg.host, reg.username, reg.password, local)
    for tag in api["tags"]:
        engine = docker_client.api.inspect_distribution(f"{api['image']}:{tag}", auth_config=auth)["Descriptor"]["digest"]
        assert reader.digest(f"{api['image']}:{tag}") == engine == api["digest"]
    assert reader.digest(f"{api['image']}:no-such-tag") is None
    assert reader.digest(f"{reg.host}/team/no-such-image:v1") is None
    reader.close()
    wrong = registry_api.Reader(reg.host, reg.username, "sentinel-wrong-password", local)
    with pytest.raises(registry_api.Unusable) as refused:
        wrong.digest(f"{api['image']}:{api['tags'][0]}")
    assert "sentinel-wrong-password" not in str(refused.value)
    forced, data3 = project.damso_json("build", "--ref", "v2", "api", "--force")
    assert forced.exit_code == 0 and data3["images"]["api"]["status"] == "built"


def test_branch_short_sha_and_per_repo_refs(project, docker_client):
    short = git_sha(project.repos["app"], "v1")[:7]
    result, data = project.damso_json(
        "build", "--ref", f"app={short}", "--ref", "site=feature/x", "--env", "prod", "api", "site"
    )
    assert result.exit_code == 0, result.output
    assert data["images"]["api"]["commit"] == git_sha(project.repos["app"], "v1")
    assert data["images"]["api"]["tags"] == [f"sha-{data['images']['api']['commit'][:12]}"]
    site = data["images"]["site"]
    assert site["commit"] == git_sha(project.repos["site"], "feature/x")
    assert site["build_args"] == {"PUBLIC_URL": "https://prod.example"}
    assert site["tags"][1] == "feature-x-prod"
    image = pull_back(docker_client, project.registry, f"{site['image']}@{site['digest']}")
    assert run_in(docker_client, image.id, "/bin/busybox", "cat", "/public_url", "/index.html") == (
        "https://prod.example\n<h1>feature</h1>\n"
    )
    # Another environment's build args make another image, not a skip.
    dev, data_dev = project.damso_json("build", "--ref", "site=feature/x", "--env", "dev", "site")
    assert dev.exit_code == 0 and data_dev["images"]["site"]["status"] == "built"
    assert data_dev["images"]["site"]["tags"][0] != site["tags"][0]


def test_default_ref_is_each_repositorys_default_branch(project):
    result, data = project.damso_json("build", "api")
    assert result.exit_code == 0, result.output
    assert data["images"]["api"]["commit"] == git_sha(project.repos["app"], "main")
    assert data["images"]["api"]["tags"][1] == "main"


def test_wrong_password_fails_before_any_build(project):
    result = project.damso("build", "--ref", "v1", "api", env={"GHCR_TOKEN": "not-the-password"})
    assert result.exit_code == 1
    assert f"Registry {project.registry.host} rejected the credentials of user '{project.registry.username}'" in result.output
    assert "not-the-password" not in result.output
    assert "Traceback" not in result.output
    assert project.builds() == []


def test_missing_credentials_name_the_variables(project, tmp_path):
    result = project.damso("build", "api", env={"GHCR_USERNAME": None, "GHCR_TOKEN": None, "DOCKER_CONFIG": str(tmp_path)})
    assert result.exit_code == 1
    assert f"No credentials for registry {project.registry.host}. Set GHCR_USERNAME and GHCR_TOKEN" in result.output


def test_unknown_ref_names_the_nearest(project):
    result = project.damso("build", "--ref", "v3", "api")
    assert result.exit_code == 2
    assert "Repository 'app' has no tag, branch or commit 'v3'; nearest:" in result.output
    assert "v1" in result.output and "v2" in result.output
    assert project.builds() == []


def test_unknown_service(project):
    result = project.damso("build", "--ref", "v1", "nope")
    assert result.exit_code == 2
    assert "Unknown service 'nope' (known: api, broken, site, worker)." in result.output


def test_service_needing_env_without_env(project):
    result = project.damso("build", "site")
    assert result.exit_code == 2 and "pass --env ENV" in result.output


def test_failing_dockerfile_does_not_stop_the_others(project):
    result, data = project.damso_json("build", "--ref", "app=v1", "api", "worker", "broken")
    assert result.exit_code == 1
    assert data["images"]["api"]["status"] == "built"
    assert data["images"]["worker"]["status"] == "built"
    assert data["images"]["broken"]["status"] == "failed"
    assert "about to fail" in data["failures"]["broken"]["log_tail"]
    text = project.damso("build", "broken")
    assert text.exit_code == 1 and "✗ broken" in text.output and "about to fail" in text.output


def test_corrupted_cache_is_fetched_again(project, tmp_path):
    first = project.damso("build", "--ref", "v1", "api", "--no-push")
    assert first.exit_code == 0, first.output
    (cache,) = (tmp_path / "cache" / "repos").glob("app-*")
    shutil.rmtree(cache / ".git" / "objects")
    (cache / "content.txt").write_text("tampered\n")
    result, data = project.damso_json("build", "--ref", "v2", "api", "--no-push")
    assert result.exit_code == 0, result.output
    assert data["images"]["api"]["commit"] == git_sha(project.repos["app"], "v2")
    assert (cache / "content.txt").read_text() == "two\n"


def test_a_ref_tag_missing_from_the_registry_is_pushed_not_skipped(project, docker_client):
    """Only the key tag reached the registry (a ref tag's push failed): a re-run pushes the ref
    tag from the key tag's image, pulled when the engine no longer has it, and records it."""
    result, data = project.damso_json("build", "--ref", "v1", "api", "--no-push")
    assert result.exit_code == 0, result.output
    api = data["images"]["api"]
    key, ref_tag = api["tags"]
    auth = {"username": project.registry.username, "password": project.registry.password}
    for line in docker_client.api.push(api["image"], tag=key, auth_config=auth, stream=True, decode=True):
        assert "error" not in line, line
    for image in docker_client.images.list(name=api["image"]):
        docker_client.images.remove(image.id, force=True)

    again, data2 = project.damso_json("build", "--ref", "v1", "api")
    assert again.exit_code == 0, again.output
    record = data2["images"]["api"]
    assert record["status"] == "skipped" and record["tags"] == [key, ref_tag]
    assert f"pushed {ref_tag}" in again.stderr
    registry_digest = lambda tag: docker_client.api.inspect_distribution(f"{api['image']}:{tag}", auth_config=auth)["Descriptor"]["digest"]  # noqa: E731
    assert registry_digest(ref_tag) == registry_digest(key) == record["digest"]
    latest = json.loads((project.root / ".damso" / "builds" / "latest.json").read_text())
    assert latest["images"]["api"]["tags"] == [key, ref_tag]
