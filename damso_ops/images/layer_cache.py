"""Layer cache from the registry: which image seeds a build's cache, and which builder uses it
(pure decisions, no I/O).

A hosted CI runner starts with an empty engine, so without help every layer of every image is
built again. The last build manifest names each service's previous image in the registry; a
build takes its unchanged layers from there:

- the legacy builder (no buildx): the previous image is pulled, then given as `cache_from`;
  any image the legacy builder made is usable as cache, no metadata needed;
- BuildKit (buildx present): `--cache-from type=registry,ref=<previous image>`, and
  `--cache-to type=inline` writes the cache metadata into each new image, for the next build.

A step is reused only when everything it depends on is the same: a changed base image, a
changed file it copies (a lock file) or a changed build arg rebuilds that step and every
step after it.
"""

from __future__ import annotations

from dataclasses import dataclass

from damso_ops.images.manifest import ImageRecord

LEGACY = "legacy"
BUILDKIT = "buildkit"


@dataclass(frozen=True)
class CacheChoice:
    """The image whose layers seed one build (None: none), and why, in words."""

    ref: str | None
    reason: str


def choose(service: str, repository: str, previous: ImageRecord | None, *, push: bool,
           no_cache: bool) -> CacheChoice:  # fmt: skip
    """The previous image of the service in the registry, pinned by digest, when one is usable."""
    if no_cache:
        return CacheChoice(None, "--no-cache: every layer is built again")
    if not push:
        return CacheChoice(None, "--no-push: the registry is not used, only the engine's own layers")
    if previous is None:
        return CacheChoice(None, f"no earlier build of {service} in the build manifest")
    if previous.image != repository:
        return CacheChoice(None, f"the earlier build of {service} is {previous.image}, not {repository}")
    if previous.digest is None:
        return CacheChoice(None, f"the earlier build of {service} was not pushed (no digest)")
    ref = f"{previous.image}@{previous.digest}"
    return CacheChoice(ref, f"layers from {previous.image}:{previous.tags[0]} ({previous.digest[:19]})")


def builder_kind(buildx_available: bool) -> str:
    """BuildKit through buildx where the docker CLI has it; else the engine's legacy builder."""
    return BUILDKIT if buildx_available else LEGACY


def using_cache(lines: list[str]) -> int:
    """How many steps a build log says came from cache (legacy: 'Using cache'; BuildKit: 'CACHED')."""
    return sum(1 for line in lines if line.strip() == "---> Using cache" or " CACHED" in f" {line}")
