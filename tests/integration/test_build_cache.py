"""Layer cache from the registry, on a real Docker engine and a registry with password auth: a
cold build (the engine holds none of the test's images or their intermediate layers) after a
one-line change takes the unchanged layers from the previous image in the registry, named by
the last build manifest; without it every layer is built again; a changed lock file or base
image still rebuilds what depends on it.

Each image records, in /stamp-*, a random number drawn when its step ran: an equal number
in two images means the step was reused, not run again."""

from __future__ import annotations

import io
import re
import tarfile

import docker.errors
import pytest
from typer.testing import CliRunner

from damso_ops.cli import app
from tests.integration.conftest import Project
from tests.support.gitrepos import add_commit, make_repo
from tests.support.images import busybox_tar, remove_images

pytestmark = pytest.mark.integration

STEP = 'RUN ["/bin/busybox", "sh", "-c", "{}"]\n'
SHOP = (
    "FROM {base}\n"
    + STEP.format("mkdir /app && echo $RANDOM$RANDOM > /stamp-mkdir")
    + "COPY lock.txt /app/lock.txt\n"
    + STEP.format("cat /app/lock.txt > /deps && echo $RANDOM$RANDOM > /stamp-deps")  # npm ci, pip install …
    + "COPY app.txt /app/app.txt\n"
    + STEP.format("cat /app/app.txt > /built && echo $RANDOM$RANDOM > /stamp-app")
)
WORKER = "FROM {base}\nCOPY job.txt /job.txt\n" + STEP.format("echo $RANDOM$RANDOM > /stamp-worker")


@pytest.fixture
def base(docker_client, tmp_path):
    """This test's own base image (busybox plus a marker file), so that it can change; removed after."""
    name, made = f"local/cache-base-{tmp_path.name.lower()[-20:]}", []

    def make(marker: str) -> str:
        data = io.BytesIO(busybox_tar())
        with tarfile.open(fileobj=data, mode="a") as tar:
            content = marker.encode()
            info = tarfile.TarInfo("base-marker")
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        docker_client.api.import_image_from_data(data.getvalue(), repository=name, tag="1")
        made.append(docker_client.images.get(f"{name}:1").id)
        return f"{name}:1"

    yield make
    for image_id in made:
        try:
            docker_client.images.remove(image_id, force=True)
        except docker.errors.ImageNotFound:
            pass


@pytest.fixture
def shop(tmp_path, registry, dockerd, docker_client, git_root, base):
    """A project with one repository and two services (shop at the root, worker in worker/)."""
    ref = base("one")
    repo = make_repo(git_root, f"shop-{tmp_path.name}", commits=1, files={
        "Dockerfile": SHOP.format(base=ref), "lock.txt": "left-pad==1.0\n", "app.txt": "hello\n",
        "worker/Dockerfile": WORKER.format(base=ref), "worker/job.txt": "job\n",
    })  # fmt: skip
    root = tmp_path / "project"
    root.mkdir()
    namespace = f"cache{tmp_path.name.lower()[-12:]}"
    (root / "damso.toml").write_text(
        f'[project]\nname = "shop"\n\n[registry]\nhost = "{registry.host}"\nnamespace = "{namespace}"\n\n'
        f'[repositories.shop]\nurl = "file://{repo}"\ndefault_ref = "main"\n\n'
        '[services.shop]\nrepo = "shop"\nimage = "shop"\n\n'
        '[services.worker]\nrepo = "shop"\nimage = "worker"\ncontext = "worker"\n'
    )
    env = {"DOCKER_HOST": dockerd.host, "GHCR_USERNAME": registry.username, "GHCR_TOKEN": registry.password,
           "DAMSO_CACHE_DIR": str(tmp_path / "cache"), "DAMSO_CONFIG": None, "DAMSO_STATE_DIR": None, "CI": "true"}  # fmt: skip
    project = Project(root, env, {"shop": repo}, registry, CliRunner())
    project.prefix = f"{registry.host}/{namespace}/"
    yield project
    remove_images(docker_client, project.prefix)


def build(project: Project, *args: str) -> tuple[str, dict]:
    """damso --verbose build --json; (its progress and build log, the manifest)."""
    import json

    result = project.runner.invoke(app, ["--config", str(project.config), "--verbose", "build", "--json", *args],
                                   env=project.env)  # fmt: skip
    assert result.exit_code == 0, result.output
    return result.stderr, json.loads(result.stdout)


def read_file(client, record: dict, path: str) -> bytes:
    """A file of the built image, from a container that is created and never started: a short-lived
    container's output can be lost on a loaded engine (an empty `docker run`), its files cannot."""
    container = client.containers.create(f"{record['image']}@{record['digest']}", ["/bin/busybox", "true"])
    try:
        stream, _ = container.get_archive(path)
        data = b"".join(stream)
    finally:
        container.remove(force=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.extractfile(tar.getmembers()[0]).read()


def stamps(client, record: dict, *names: str) -> dict[str, str]:
    return {name: read_file(client, record, f"/stamp-{name}").decode().strip() for name in names}


def from_cache(log: str, service: str) -> int:
    """The 'N steps from cache' damso reports when the service's image is built."""
    (count,) = re.findall(rf"^\[{service}\] built: .*; (\d+) steps? from cache$", log, re.MULTILINE)
    return int(count)


def test_cold_build_takes_unchanged_layers_from_the_registry_and_without_it_builds_all(shop, docker_client):
    _, first = build(shop)
    old = first["images"]
    before = {"shop": stamps(docker_client, old["shop"], "mkdir", "deps", "app"),
              "worker": stamps(docker_client, old["worker"], "worker")}  # fmt: skip

    add_commit(shop.repos["shop"], {"app.txt": "hello, world\n"}, "one-line change in shop")
    remove_images(docker_client, shop.prefix)
    log, second = build(shop)
    new = second["images"]
    assert {n: r["status"] for n, r in new.items()} == {"shop": "built", "worker": "built"}
    assert f"[shop] cache: layers from {old['shop']['image']}:{old['shop']['tags'][0]}" in log
    # shop: everything before the changed file is reused; the step after it runs again.
    after = stamps(docker_client, new["shop"], "mkdir", "deps", "app")
    assert (after["mkdir"], after["deps"]) == (before["shop"]["mkdir"], before["shop"]["deps"])
    assert after["app"] != before["shop"]["app"]
    assert from_cache(log, "shop") == 3  # RUN mkdir, COPY lock.txt, RUN install
    assert log.count("---> Using cache") >= 3 or log.count(" CACHED") >= 3  # the builder says so too
    # worker: its files did not change, so nothing in it is built again.
    assert stamps(docker_client, new["worker"], "worker") == before["worker"]
    assert from_cache(log, "worker") == 2

    # The same cold build with no registry cache (no earlier manifest): every step runs.
    (shop.root / ".damso" / "builds" / "latest.json").unlink()
    add_commit(shop.repos["shop"], {"app.txt": "hello again\n"}, "another one-line change")
    remove_images(docker_client, shop.prefix)
    log, third = build(shop)
    assert "[shop] cache: no earlier build of shop in the build manifest" in log
    assert from_cache(log, "shop") == 0 and from_cache(log, "worker") == 0
    assert "Using cache" not in log
    rebuilt = stamps(docker_client, third["images"]["shop"], "mkdir", "deps")
    assert rebuilt["mkdir"] != before["shop"]["mkdir"] and rebuilt["deps"] != before["shop"]["deps"]


def test_changed_lock_file_or_base_image_rebuilds_what_depends_on_it(shop, docker_client, base):
    _, first = build(shop)
    before = stamps(docker_client, first["images"]["shop"], "mkdir", "deps")

    # A changed lock file: the install step after it runs again; the step before it is reused.
    add_commit(shop.repos["shop"], {"lock.txt": "left-pad==1.1\n"}, "bump left-pad")
    remove_images(docker_client, shop.prefix)
    log, second = build(shop)
    after_lock = stamps(docker_client, second["images"]["shop"], "mkdir", "deps")
    assert after_lock["mkdir"] == before["mkdir"]
    assert after_lock["deps"] != before["deps"]
    assert from_cache(log, "shop") == 1
    assert read_file(docker_client, second["images"]["shop"], "/deps") == b"left-pad==1.1\n"

    # A changed base image (same name, new content): every step is built again, in both services.
    base("two")
    add_commit(shop.repos["shop"], {"app.txt": "hello, world\n"}, "one-line change in shop")
    remove_images(docker_client, shop.prefix)
    log, third = build(shop)
    assert "[shop] cache: layers from" in log  # the previous image was offered…
    assert from_cache(log, "shop") == 0 and from_cache(log, "worker") == 0  # …and nothing matched
    after_base = stamps(docker_client, third["images"]["shop"], "mkdir", "deps")
    assert after_base["mkdir"] != after_lock["mkdir"] and after_base["deps"] != after_lock["deps"]
    assert read_file(docker_client, third["images"]["shop"], "/base-marker") == b"two"
