"""The layer cache's I/O: the previous images the last build manifest names, the seed image
pulled into the engine, whether the docker CLI has buildx. The decisions are in layer_cache.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from damso_ops.errors import DamsoError
from damso_ops.images import builder, buildkit, layer_cache
from damso_ops.images import manifest as manifests
from damso_ops.images.manifest import ImageRecord

Event = Callable[[str, str, str], None]  # (service, phase, message)


def previous_images(state_dir: Path) -> dict[str, ImageRecord]:
    """The last good image of every service (builds/latest.json); none when there is no
    readable manifest yet (a first build, or a CI runner that restored none)."""
    try:
        return dict(manifests.load(manifests.builds_dir(state_dir) / "latest.json").images)
    except DamsoError:
        return {}


def seed(client, name: str, cache: layer_cache.CacheChoice | None, kind: str,
         auth: builder.RegistryAuth | None, on_event: Event) -> str | None:  # fmt: skip
    """The image ref the build takes cached layers from (pulled first for the legacy builder),
    or None. A pull that fails costs the cache, never the build."""
    if cache is None:
        return None
    on_event(name, "cache", cache.reason)
    if cache.ref is None or kind == layer_cache.BUILDKIT:  # BuildKit fetches only the layers it reuses
        return cache.ref
    try:
        builder.pull_ref(client, cache.ref, auth)
    except DamsoError as exc:
        on_event(name, "cache", f"could not pull {cache.ref} ({exc.message}); building without it")
        return None
    return cache.ref


def buildx_available() -> bool:
    return buildkit.available()
