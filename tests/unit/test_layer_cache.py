"""Layer cache decisions (which image seeds a build, which builder) and the commands they make."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from damso_ops.errors import DamsoError
from damso_ops.images import buildkit, layer_cache, pipeline, seeds
from damso_ops.images import manifest as manifests
from damso_ops.images.builder import BuildSpec, RegistryAuth
from damso_ops.images.jobs import ImageJob
from damso_ops.images.layer_cache import CacheChoice
from damso_ops.images.manifest import BuildManifest, ImageRecord
from damso_ops.images.sources import Resolved

DIGEST = "sha256:" + "d" * 64
REPO = "ghcr.io/team/api"


def record(image: str = REPO, digest: str | None = DIGEST, tags: list[str] | None = None) -> ImageRecord:
    return ImageRecord("api", "app", "file:///app.git", "v1", "a" * 40, image, tags or ["sha-aaaaaaaaaaaa", "v1"],
                       digest, {}, "built", "2026-12-04T00:00:00+00:00")  # fmt: skip


def test_the_previous_image_pinned_by_digest_seeds_the_build():
    assert layer_cache.choose("api", REPO, record(), push=True, no_cache=False) == CacheChoice(
        f"{REPO}@{DIGEST}", f"layers from {REPO}:sha-aaaaaaaaaaaa (sha256:dddddddddddd)"
    )


@pytest.mark.parametrize(
    ("previous", "push", "no_cache", "reason"),
    [
        (record(), True, True, "--no-cache: every layer is built again"),
        (record(), False, False, "--no-push: the registry is not used, only the engine's own layers"),
        (None, True, False, "no earlier build of api in the build manifest"),
        (record(image="ghcr.io/old/api"), True, False, f"the earlier build of api is ghcr.io/old/api, not {REPO}"),
        (record(digest=None), True, False, "the earlier build of api was not pushed (no digest)"),
    ],
)
def test_no_seed_and_why(previous, push, no_cache, reason):
    assert layer_cache.choose("api", REPO, previous, push=push, no_cache=no_cache) == CacheChoice(None, reason)


def test_builder_kind():
    assert layer_cache.builder_kind(True) == "buildkit"
    assert layer_cache.builder_kind(False) == "legacy"


def test_using_cache_counts_steps_the_builders_report_as_cached():
    legacy = ["Step 2/5 : RUN make", " ---> Using cache", " ---> 1b2c3d", "Step 3/5 : COPY . /src",
              " ---> Using cache", "Step 4/5 : RUN echo Using cache", " ---> Running in 9f"]  # fmt: skip
    assert layer_cache.using_cache(legacy) == 2
    kit = ["#5 [2/4] RUN make", "#5 CACHED", "#6 [3/4] COPY . /src", "#6 DONE 0.1s", "#7 CACHED"]
    assert layer_cache.using_cache(kit) == 2
    assert layer_cache.using_cache(["#8 [4/4] RUN echo NOT_CACHED", "#8 0.2 NOT_CACHED"]) == 0


SPEC = BuildSpec(context=Path("/w/app"), dockerfile="Dockerfile", repository=REPO, tags=("sha-aaaaaaaaaaaa", "v1"),
                 build_args={"B": "2", "A": "1"}, labels={"org.opencontainers.image.revision": "a" * 40},
                 platform="linux/amd64")  # fmt: skip
HEAD = ("docker", "buildx", "build", "--progress", "plain", "--load", "--iidfile", "/t/iid",
        "--file", "/w/app/Dockerfile", "--platform", "linux/amd64",
        "--tag", f"{REPO}:sha-aaaaaaaaaaaa", "--tag", f"{REPO}:v1", "--build-arg", "A=1", "--build-arg", "B=2",
        "--label", "org.opencontainers.image.revision=" + "a" * 40)  # fmt: skip


def test_buildx_command_takes_registry_cache_and_writes_inline_cache():
    command = buildkit.build_command(SPEC, cache_from=f"{REPO}@{DIGEST}", no_cache=False, iidfile=Path("/t/iid"))
    assert command.argv == HEAD + ("--cache-from", f"type=registry,ref={REPO}@{DIGEST}",
                                   "--cache-to", "type=inline", "/w/app")  # fmt: skip
    assert dict(command.env) == {}


def test_buildx_command_without_seed_or_with_no_cache_still_writes_inline_cache():
    plain = buildkit.build_command(SPEC, cache_from=None, no_cache=False, iidfile=Path("/t/iid"))
    assert plain.argv == HEAD + ("--cache-to", "type=inline", "/w/app")
    fresh = buildkit.build_command(SPEC, cache_from=f"{REPO}@{DIGEST}", no_cache=True, iidfile=Path("/t/iid"),
                                   config_dir=Path("/t/cfg"))  # fmt: skip
    assert fresh.argv == HEAD + ("--no-cache", "--cache-to", "type=inline", "/w/app")
    assert dict(fresh.env) == {"DOCKER_CONFIG": "/t/cfg"}


AUTH = RegistryAuth("ghcr.io", "bot", "sentinel-token-7f3a", "$GHCR_USERNAME/$GHCR_TOKEN")


def test_private_docker_config_holds_only_damsos_credential_and_is_removed(tmp_path):
    user = tmp_path / "user-docker"
    (user / "cli-plugins").mkdir(parents=True)
    with buildkit.private_config(AUTH, {"DOCKER_CONFIG": str(user)}) as folder:
        config = folder / "config.json"
        assert json.loads(config.read_text()) == {"auths": {"ghcr.io": {"auth": "Ym90OnNlbnRpbmVsLXRva2VuLTdmM2E="}}}
        assert stat.S_IMODE(config.stat().st_mode) == 0o600 and stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert (folder / "cli-plugins").resolve() == (user / "cli-plugins").resolve()
    assert not folder.exists()
    from_docker_config = RegistryAuth("ghcr.io", "bot", "x", "the docker config file")
    with buildkit.private_config(from_docker_config, {}) as folder:
        assert folder is None  # the CLI reads the user's own config
    with buildkit.private_config(None, {}) as folder:
        assert folder is None


class FakeApi:
    def __init__(self, fail: bool = False, digest: str | None = None):
        self.pulls: list[tuple[str, str]] = []
        self.fail, self.digest = fail, digest

    def pull(self, repository, tag=None, auth_config=None):
        import docker.errors

        self.pulls.append((repository, tag, auth_config))
        if self.fail:
            raise docker.errors.APIError("manifest unknown", explanation="manifest unknown")

    def inspect_distribution(self, ref, auth_config=None):
        return {"Descriptor": {"digest": self.digest}}


class FakeClient:
    def __init__(self, **kw):
        self.api = FakeApi(**kw)


def test_seed_cache_pulls_for_the_legacy_builder_only_and_survives_a_failed_pull():
    events: list[tuple[str, str, str]] = []
    choice = CacheChoice(f"{REPO}@{DIGEST}", "layers from …")
    client = FakeClient()
    on_event = lambda *e: events.append(e)  # noqa: E731
    assert seeds.seed(client, "api", choice, "legacy", AUTH, on_event) == f"{REPO}@{DIGEST}"
    assert client.api.pulls == [(REPO, DIGEST, AUTH.auth_config())]
    assert events == [("api", "cache", "layers from …")]

    kit = FakeClient()
    assert seeds.seed(kit, "api", choice, "buildkit", AUTH, on_event) == f"{REPO}@{DIGEST}"
    assert kit.api.pulls == []  # BuildKit fetches what it reuses itself

    broken, events[:] = FakeClient(fail=True), []
    assert seeds.seed(broken, "api", choice, "legacy", AUTH, on_event) is None
    assert events[-1][1] == "cache" and events[-1][2].startswith(f"could not pull {REPO}@{DIGEST} (Pull of {REPO}:")
    assert events[-1][2].endswith("; building without it")
    assert seeds.seed(client, "api", None, "legacy", AUTH, on_event) is None
    assert seeds.seed(client, "api", CacheChoice(None, "why"), "legacy", AUTH, on_event) is None


def test_previous_images_come_from_latest_json_and_none_without_one(tmp_path):
    assert seeds.previous_images(tmp_path) == {}
    manifests.save(tmp_path, BuildManifest("b1", "t1", None, {"api": record()}))
    assert seeds.previous_images(tmp_path) == {"api": record()}
    (tmp_path / "builds" / "latest.json").write_text("{not json")
    assert seeds.previous_images(tmp_path) == {}


def test_no_builder_probe_when_the_registry_has_every_image():
    job = ImageJob("api", Resolved("app", "file:///app.git", "a" * 40, "a" * 40, "commit"), REPO, "sha-aaaaaaaaaaaa",
                   ("sha-aaaaaaaaaaaa",), {}, ".", "Dockerfile")  # fmt: skip

    def probe() -> str:
        raise AssertionError("buildx was probed for a no-op build")

    outcomes = pipeline.run_builds(FakeClient(digest=DIGEST), [job], {}, Path("/nonexistent"), auth=AUTH, push=True,
                                   force=False, platform="linux/amd64", jobs=2, on_event=lambda *e: None,
                                   builder_kind=probe)  # fmt: skip
    assert [(o.service, o.status, o.digest) for o in outcomes] == [("api", "skipped", DIGEST)]


def test_buildx_probe_is_a_command():
    assert buildkit.probe().argv == ("docker", "buildx", "version")


def test_pull_ref_splits_digest_and_tag_references():
    from damso_ops.images import builder

    client = FakeClient()
    builder.pull_ref(client, f"{REPO}@{DIGEST}", None)
    builder.pull_ref(client, "127.0.0.1:5000/team/api:v1", None)
    assert client.api.pulls == [(REPO, DIGEST, None), ("127.0.0.1:5000/team/api", "v1", None)]
    with pytest.raises(DamsoError, match="Pull of"):
        builder.pull_ref(FakeClient(fail=True), f"{REPO}@{DIGEST}", None)
