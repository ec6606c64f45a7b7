import json
from pathlib import Path

import pytest

from damso_ops import config
from damso_ops.images import jobs as build
from damso_ops.images import builder
from damso_ops.images import manifest
from damso_ops.errors import DamsoError, UsageError
from damso_ops.images.manifest import BuildManifest, ImageRecord
from damso_ops.images.sources import Resolved

CFG = """
[registry]
host = "127.0.0.1:5000"
namespace = "team"
[repositories.app]
url = "file:///app.git"
[repositories.site]
url = "file:///site.git"
[services.api]
repo = "app"
image = "api"
[services.worker]
repo = "app"
image = "worker"
context = "worker"
[services.web]
repo = "site"
image = "web"
build_args = { A = "1" }
env_build_args = ["PUBLIC_URL"]
[environments.prod.build_args]
PUBLIC_URL = "https://prod"
[environments.dev.build_args]
PUBLIC_URL = "https://dev"
"""


@pytest.fixture
def cfg():
    return config.parse(CFG, Path("/p/damso.toml"))


def test_ref_request_parsing():
    req = build.RefRequest.parse(["v3", "site=main"], ["app", "site"])
    assert req.for_repo("app", "main") == "v3"
    assert req.for_repo("site", "x") == "main"
    assert build.RefRequest.parse([], ["app"]).for_repo("app", "dflt") == "dflt"
    with pytest.raises(UsageError, match="unknown repository 'nope'"):
        build.RefRequest.parse(["nope=v1"], ["app"])
    with pytest.raises(UsageError, match="given twice"):
        build.RefRequest.parse(["v1", "v2"], ["app"])


def test_key_tag_includes_build_args_only_when_they_shape_the_image():
    sha = "0123456789abcdef" * 2 + "01234567"
    assert build.key_tag(sha, {}, "linux/amd64") == "sha-0123456789ab"
    prod = build.key_tag(sha, {"URL": "https://prod"}, "linux/amd64")
    dev = build.key_tag(sha, {"URL": "https://dev"}, "linux/amd64")
    assert prod.startswith("sha-0123456789ab-") and prod != dev
    assert build.key_tag(sha, {}, "linux/arm64") != "sha-0123456789ab"


def test_plan_tags_and_per_env_args(cfg):
    resolved = {
        "app": Resolved("app", "file:///app.git", "v3", "a" * 40, "tag"),
        "site": Resolved("site", "file:///site.git", "feature/x", "b" * 40, "branch"),
    }
    targets = {t.service: t for t in build.plan(cfg, cfg.services, resolved, "prod", "linux/amd64")}
    assert targets["api"].tags == ("sha-aaaaaaaaaaaa", "v3")
    assert targets["worker"].context == "worker"
    assert targets["web"].build_args == {"A": "1", "PUBLIC_URL": "https://prod"}
    assert targets["web"].tags[1] == "feature-x-prod"
    assert targets["web"].spec_repository == "127.0.0.1:5000/team/web"


def test_a_ref_tag_two_services_contest_is_the_first_in_the_file_s(cfg):
    """api-dev builds the same image repository as api, from another repository at a branch
    of the same name: api (first in the file) keeps `main`, whatever order the build names them in."""
    text = CFG + '[repositories.app-dev]\nurl = "file:///app-dev.git"\n[services.api-dev]\nrepo = "app-dev"\nimage = "api"\n'
    two = config.parse(text, Path("/p/damso.toml"))
    resolved = {"app": Resolved("app", "file:///app.git", "main", "a" * 40, "branch"),
                "app-dev": Resolved("app-dev", "file:///app-dev.git", "main", "d" * 40, "branch")}  # fmt: skip
    services = {n: two.services[n] for n in ("api-dev", "api")}
    jobs = {t.service: t for t in build.plan(two, services, resolved, None, "linux/amd64")}
    assert jobs["api"].tags == ("sha-aaaaaaaaaaaa", "main") and jobs["api"].yields is None
    assert jobs["api-dev"].tags == ("sha-dddddddddddd",) and jobs["api-dev"].yields == ("main", "api")
    alone = build.plan(two, {"api-dev": two.services["api-dev"]}, resolved, None, "linux/amd64")
    assert alone[0].tags == ("sha-dddddddddddd", "main")  # nobody contests it in this build
    same = {**resolved, "app-dev": resolved["app"]}  # the same commit: one image, both tagged
    assert [t.tags for t in build.plan(two, services, same, None, "linux/amd64")] == [("sha-aaaaaaaaaaaa", "main")] * 2


def test_commit_ref_gets_no_ref_tag(cfg):
    resolved = {"app": Resolved("app", "u", "abc1234", "c" * 40, "commit")}
    (t,) = build.plan(cfg, {"api": cfg.services["api"]}, resolved, None, "linux/amd64")
    assert t.tags == ("sha-cccccccccccc",)


def test_service_with_env_args_needs_env(cfg):
    with pytest.raises(UsageError, match="pass --env ENV"):
        build.build_args_for("web", cfg.services["web"], cfg, None)


def test_tag_safe():
    assert builder.tag_safe("feature/new-ui") == "feature-new-ui"
    assert builder.tag_safe(".hidden") == "hidden"


def test_credentials_from_env_and_missing(cfg, tmp_path, monkeypatch):
    auth = builder.credentials(cfg.registry, {"GHCR_USERNAME": "u", "GHCR_TOKEN": "secret-token"})
    assert (auth.username, auth.password, auth.host) == ("u", "secret-token", "127.0.0.1:5000")
    assert "secret-token" not in repr(auth)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))  # an empty docker config
    with pytest.raises(DamsoError, match="No credentials for registry 127.0.0.1:5000") as err:
        builder.credentials(cfg.registry, {})
    assert "GHCR_USERNAME and GHCR_TOKEN" in err.value.hint


def _record(service, status="built", digest="sha256:" + "1" * 64):
    return ImageRecord(service, "app", "u", "v1", "a" * 40, f"r/{service}", ["sha-aaaaaaaaaaaa"], digest, {}, status, "t")


def test_manifest_latest_merges_and_ignores_failures(tmp_path):
    manifest.save(tmp_path, BuildManifest("b1", "t1", None, {"api": _record("api"), "web": _record("web")}))
    second = BuildManifest("b2", "t2", None, {
        "api": _record("api", digest="sha256:" + "2" * 64),
        "web": _record("web", status="failed", digest=None),
    })
    path = manifest.save(tmp_path, second)
    assert json.loads(path.read_text())["images"]["web"]["status"] == "failed"
    latest = manifest.load(tmp_path / "builds" / "latest.json")
    assert latest.images["api"].digest == "sha256:" + "2" * 64
    assert latest.images["web"].digest == "sha256:" + "1" * 64  # the last good one stays
    assert latest.images["api"].pinned == "r/api@sha256:" + "2" * 64


def test_manifest_load_errors(tmp_path):
    with pytest.raises(DamsoError, match="Run 'damso build' first"):
        manifest.load(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(DamsoError, match="unreadable"):
        manifest.load(tmp_path / "bad.json")
