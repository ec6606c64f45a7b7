"""Releases: content hashes and ids, the manifest, upload with skip, diff against the current
release (in-process moto S3 through the release store)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

from damso_ops.deploy import releases

T1 = datetime(2026, 3, 1, 9, 30, 0, tzinfo=timezone.utc)
T2 = datetime(2026, 3, 2, 10, 0, 5, tzinfo=timezone.utc)
FILES = {"api": {"compose.yml": "services: {api: {}}\n", "role.env": "A=1\n"}, "web": {"compose.yml": "services: {}\n"}}
IMAGES = {"api": {"image": "registry.test/team/api@sha256:1", "commit": "c1", "ref": "v1", "repository": "app"}}
SETTINGS = {"api": {"health_timeout": 30}, "web": {"health_timeout": 20}}


def make(files=FILES, now=T1, settings=SETTINGS, registry="registry.test", build="b1", images=IMAGES) -> releases.Release:
    return releases.make("prod", files, images, registry, build, settings, now=now)


def test_the_same_content_gives_the_same_hash_and_id_suffix():
    first, later = make(), make(now=T2, build="b2", images={})
    assert first.content == later.content  # build id and image records do not decide what runs; the files do
    assert first.id == f"20260301T093000Z-{first.content[:10]}"
    assert later.id == f"20260302T100005Z-{first.content[:10]}"
    reordered = {"web": FILES["web"], "api": dict(reversed(list(FILES["api"].items())))}
    assert make(files=reordered).content == first.content


def test_files_settings_and_registry_each_change_the_hash():
    base = make().content
    changed_file = {**FILES, "web": {"compose.yml": "services: {web: {}}\n"}}
    assert make(files=changed_file).content != base
    assert make(settings={**SETTINGS, "web": {"health_timeout": 21}}).content != base
    assert make(settings=None).content != base
    assert make(registry="ghcr.io").content != base
    assert len({make(files=changed_file).content, make(registry="ghcr.io").content, base}) == 3


def test_the_manifest_records_sums_images_settings_and_who():
    release = make()
    m = release.manifest
    assert (m["release"], m["env"], m["content"], m["build"]) == (release.id, "prod", release.content, "b1")
    assert m["created"] == "2026-03-01T09:30:00+00:00" and m["registry"] == "registry.test"
    assert m["roles"] == {role: {n: hashlib.sha256(t.encode()).hexdigest() for n, t in fs.items()}
                          for role, fs in FILES.items()}  # fmt: skip
    assert m["images"] == IMAGES and m["settings"] == SETTINGS
    assert m["by"].count("@") == 1 and m["by"].split("@")[0] == releases.user()


def test_objects_are_keyed_by_the_store_layout():
    release = make()
    assert release.objects() == {
        f"prod/releases/{release.id}/api/compose.yml": b"services: {api: {}}\n",
        f"prod/releases/{release.id}/api/role.env": b"A=1\n",
        f"prod/releases/{release.id}/web/compose.yml": b"services: {}\n",
    }


def test_upload_puts_the_manifest_after_the_files_then_skips_what_is_there(store):
    release = make()
    stats = releases.upload(store, release)
    assert stats.keys == [*sorted(release.objects()), f"prod/releases/{release.id}/manifest.json"]
    assert (stats.put, stats.skipped) == (4, 0)
    assert store.current() is None  # the pointer is the caller's last write
    assert json.loads(store.read(store.keys.manifest(release.id))) == release.manifest
    again = releases.upload(store, release)
    assert (again.put, again.skipped, again.keys) == (0, 4, [])


def test_upload_rewrites_an_object_whose_content_differs(store):
    release = make()
    releases.upload(store, release)
    key = store.keys.file(release.id, "api", "role.env")
    store.write(key, b"A=2\n", sha256=releases.sha256(b"A=2\n"))
    stats = releases.upload(store, release)
    assert (stats.put, stats.skipped, stats.keys) == (1, 3, [key])
    assert store.file(release.id, "api", "role.env") == "A=1\n"


def test_diff_without_a_current_release_shows_every_file_as_new(store):
    diffs = releases.diff(store, None, make())
    assert sorted(diffs) == ["api/compose.yml", "api/role.env", "web/compose.yml"]
    assert diffs["api/role.env"] == "--- current/api/role.env\n+++ new/api/role.env\n@@ -0,0 +1 @@\n+A=1\n"


def test_diff_against_the_current_release_shows_only_changes(store):
    old = make()
    releases.upload(store, old)
    store.make_current(old.id, old.content)
    new = make(files={"api": {"compose.yml": FILES["api"]["compose.yml"], "role.env": "A=1\nB=2\n"},
                      "web": FILES["web"], "agent": {"compose.yml": "services: {agent: {}}\n"}}, now=T2)  # fmt: skip
    diffs = releases.diff(store, store.current(), new)
    assert sorted(diffs) == ["agent/compose.yml", "api/role.env"]
    assert diffs["api/role.env"] == "--- current/api/role.env\n+++ new/api/role.env\n@@ -1 +1,2 @@\n A=1\n+B=2\n"
    assert diffs["agent/compose.yml"].startswith("--- current/agent/compose.yml\n+++ new/agent/compose.yml\n@@ -0,0 +1 @@")
    assert releases.diff(store, store.current(), make(now=T2)) == {}


def test_all_healthy_needs_every_report_healthy_on_the_release():
    good = {"status": "healthy", "running": "r2"}
    assert releases.all_healthy({"i-1": good, "i-2": good}, "r2")
    assert not releases.all_healthy({"i-1": good, "i-2": {"status": "healthy", "running": "r1"}}, "r2")
    assert not releases.all_healthy({"i-1": good, "i-2": {"status": "unhealthy", "running": "r2"}}, "r2")
    assert releases.all_healthy({}, "r2")  # nothing waited for
