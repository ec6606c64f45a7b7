"""damso build: refs → commits → images in the registry → a build manifest.

Library code: reports progress through a callback, never prints.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from damso_ops.images import builder, buildkit, layer_cache, registry_api, seeds, sources
from damso_ops.images import manifest as manifests
from damso_ops.images.jobs import ImageJob, RefRequest, check_request, labels, plan
from damso_ops.images.manifest import BuildManifest, ImageRecord
from damso_ops.config import Config, Service
from damso_ops.errors import DamsoError, UsageError

log = logging.getLogger("damso.build")

Event = Callable[[str, str, str], None]  # (service, phase, message)


@dataclass
class Outcome:
    service: str
    status: str  # built | skipped | failed
    image: str
    digest: str | None = None
    error: str | None = None
    log_tail: str = ""
    seconds: float = 0.0
    # The tags the registry answers for (None: nothing pushed, the local tags). A failed
    # outcome names only its key tag: a ref tag may be missing from the registry.
    tags: tuple[str, ...] | None = None


def resolve_all(
    cfg: Config, services: dict[str, Service], refs: RefRequest, cache_root: Path, jobs: int
) -> dict[str, sources.Resolved]:
    """Every needed repository's ref → one commit, before anything is built."""
    repos = sorted({svc.repo for svc in services.values()})
    unused = set(refs.per_repo) - set(repos)
    if unused:
        raise UsageError(
            f"--ref names {', '.join(sorted(unused))}, which none of the selected services builds from."
        )

    def one(repo: str) -> sources.Resolved:
        r = cfg.repositories[repo]
        return sources.resolve(repo, r.url, refs.for_repo(repo, r.default_ref), cache_root)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return dict(zip(repos, pool.map(one, repos)))


def fetch_all(resolved: dict[str, sources.Resolved], cache_root: Path, jobs: int) -> dict[str, Path]:
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        paths = pool.map(lambda r: sources.checkout(r, cache_root), resolved.values())
        return dict(zip(resolved, paths))


def lookup(client, job: ImageJob, auth: builder.RegistryAuth | None, on_event: Event,
           api: registry_api.Reader | None = None) -> Outcome | None:  # fmt: skip
    """None when the registry lacks the job's key tag (build it). Otherwise every ref tag is
    checked too: one that is missing, or names another image, is pushed from the key tag's
    image (the local one, else pulled), and the outcome is skipped, or failed if that fails.
    api: a registry_api.Reader, asked first (builder.remote_digest)."""
    started = time.monotonic()
    name, repo = job.service, job.spec_repository
    on_event(name, "checking", f"{repo}:{job.key_tag}")
    try:
        digest = builder.remote_digest(client, f"{repo}:{job.key_tag}", auth, api)
        if not digest:
            return None
        missing = [tag for tag in job.tags[1:] if builder.remote_digest(client, f"{repo}:{tag}", auth, api) != digest]
        if missing:
            on_event(name, "tagging", f"{repo}:{', '.join(missing)} (not in the registry)")
            builder.push_tags(client, repo, job.key_tag, missing, digest, auth)
    except DamsoError as exc:
        on_event(name, "failed", exc.message)
        return Outcome(name, "failed", repo, error=exc.message, seconds=time.monotonic() - started, tags=(job.key_tag,))
    pushed = f"; pushed {', '.join(missing)}" if missing else ""
    on_event(name, "skipped", f"already in the registry ({digest[:19]}){pushed}")
    return Outcome(name, "skipped", repo, digest, seconds=time.monotonic() - started, tags=job.tags)


def build_one(
    client,
    job: ImageJob,
    worktree: Path,
    *,
    auth: builder.RegistryAuth | None,
    push: bool,
    platform: str,
    on_event: Event,
    cache: layer_cache.CacheChoice | None = None,
    kind: str = layer_cache.LEGACY,
    no_cache: bool = False,
) -> Outcome:
    """Build (its cache seeded from cache.ref), tag and (with push) push. Never raises for a
    build failure."""
    started = time.monotonic()
    name, repo = job.service, job.spec_repository
    tail: deque[str] = deque(maxlen=20)
    try:
        on_event(name, "building", f"{job.source.repo}@{job.source.sha[:12]}")
        created = datetime.now(timezone.utc).isoformat(timespec="seconds")
        spec = builder.BuildSpec(
            context=worktree / job.context,
            dockerfile=job.dockerfile,
            repository=repo,
            tags=job.tags,
            build_args=job.build_args,
            labels=labels(job, created),
            platform=platform,
        )

        cached = 0

        def line(text: str) -> None:
            nonlocal cached
            tail.append(text)
            cached += layer_cache.using_cache([text])
            on_event(name, "log", text)

        seed = seeds.seed(client, name, cache, kind, auth, on_event)
        if kind == layer_cache.BUILDKIT:
            buildkit.build(spec, cache_from=seed, no_cache=no_cache, auth=auth, on_line=line)
        else:
            builder.build(client, spec, on_line=line, cache_from=(seed,) if seed else (), nocache=no_cache)
        digest = None
        if push:
            on_event(name, "pushing", f"{repo}:{job.key_tag}")
            digest = builder.push(client, repo, job.key_tag, auth, on_line=line)
            builder.push_tags(client, repo, job.key_tag, list(job.tags[1:]), digest, auth, on_line=line)
        on_event(name, "built", f"{digest or '(not pushed)'}; {cached} {'step' if cached == 1 else 'steps'} from cache")
        return Outcome(name, "built", repo, digest, seconds=time.monotonic() - started,
                       tags=job.tags if push else None)  # fmt: skip
    except builder.BuildFailed as exc:
        on_event(name, "failed", exc.message)
        return Outcome(name, "failed", repo, error=exc.message, log_tail=exc.log_tail or "\n".join(tail),
                       seconds=time.monotonic() - started, tags=(job.key_tag,))  # fmt: skip
    except DamsoError as exc:
        on_event(name, "failed", exc.message)
        return Outcome(name, "failed", repo, error=exc.message, log_tail="\n".join(tail),
                       seconds=time.monotonic() - started, tags=(job.key_tag,))  # fmt: skip


LOOKUPS = 8  # registry lookups at once (below the Docker client's 10 pooled connections)


def run_builds(
    client,
    image_jobs: list[ImageJob],
    resolved: dict[str, sources.Resolved],
    cache_root: Path,
    *,
    auth: builder.RegistryAuth | None,
    push: bool,
    force: bool,
    platform: str,
    jobs: int,
    on_event: Event,
    previous: Mapping[str, ImageRecord] | None = None,
    builder_kind: Callable[[], str] = lambda: layer_cache.LEGACY,
    no_cache: bool = False,
    api: registry_api.Reader | None = None,
) -> list[Outcome]:
    """One outcome per job, in order. The registry is asked first (api, when given, before the
    engine): only repositories with something left to build are fetched. previous: the last build
    manifest's images, whose layers seed each build's cache; builder_kind is asked only when
    something is left to build."""
    lock = threading.Lock()

    def safe_event(service: str, phase: str, message: str) -> None:
        with lock:
            on_event(service, phase, message)

    looked_up = [None] * len(image_jobs)
    if push and not force:  # registry questions, not builds: all at once
        with ThreadPoolExecutor(max_workers=max(1, min(LOOKUPS, len(image_jobs)))) as pool:
            looked_up = list(pool.map(lambda job: lookup(client, job, auth, safe_event, api), image_jobs))
    kind = layer_cache.LEGACY
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        todo = [job for job, found in zip(image_jobs, looked_up) if found is None]
        if todo:
            safe_event("*", "fetching", ", ".join(sorted({job.source.repo for job in todo})))
            kind = builder_kind()
            safe_event("*", "builder", "BuildKit (docker buildx)" if kind == layer_cache.BUILDKIT
                       else "the engine's legacy builder (no docker buildx)")  # fmt: skip
        worktrees = fetch_all({job.source.repo: resolved[job.source.repo] for job in todo}, cache_root, jobs)
        caches = {job.service: layer_cache.choose(job.service, job.spec_repository, (previous or {}).get(job.service),
                                                  push=push, no_cache=no_cache) for job in todo}  # fmt: skip
        built = iter(pool.map(lambda job: build_one(client, job, worktrees[job.source.repo], auth=auth, push=push,
                                                    platform=platform, on_event=safe_event, cache=caches[job.service],
                                                    kind=kind, no_cache=no_cache), todo))  # fmt: skip
        return [found if found is not None else next(built) for found in looked_up]


def manifest_for(image_jobs: list[ImageJob], outcomes: list[Outcome], env: str | None) -> BuildManifest:
    now = datetime.now(timezone.utc)
    records = {}
    for job, o in zip(image_jobs, outcomes):
        records[job.service] = ImageRecord(
            service=job.service,
            repository=job.source.repo,
            url=job.source.url,
            ref=job.source.ref,
            commit=job.source.sha,
            image=job.spec_repository,
            tags=list(job.tags if o.tags is None else o.tags),
            digest=o.digest,
            build_args=dict(job.build_args),
            status=o.status,
            built_at=now.isoformat(timespec="seconds"),
            env=job.env,
        )
    build_id = now.strftime("%Y%m%dT%H%M%SZ") + "-" + hashlib.sha256(repr(sorted(records)).encode() + now.isoformat().encode()).hexdigest()[:6]
    return BuildManifest(id=build_id, created=now.isoformat(timespec="seconds"), env=env, images=records)


@dataclass(frozen=True)
class BuildResult:
    manifest: BuildManifest
    outcomes: list[Outcome]
    manifest_path: Path

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "failed"]


def build(
    cfg: Config,
    client,
    *,
    service_names: list[str],
    ref_values: list[str],
    env: str | None,
    push: bool,
    force: bool,
    platform: str,
    jobs: int,
    cache_root: Path,
    on_event: Event,
    environ: Mapping[str, str] | None = None,
    no_cache: bool = False,
    buildx: Callable[[], bool] | None = None,
) -> BuildResult:
    """The whole of `damso build`. Bad input fails before anything is fetched or built."""
    services, refs = check_request(cfg, service_names, ref_values, env, platform)
    auth = None
    if push:
        auth = builder.credentials(cfg.registry, environ)
        on_event("*", "login", auth.host)
        builder.login(client, auth)
    on_event("*", "resolving", ", ".join(sorted({s.repo for s in services.values()})))
    resolved = resolve_all(cfg, services, refs, cache_root, jobs)
    for repo, r in sorted(resolved.items()):
        on_event("*", "resolved", f"{repo} {r.ref} → {r.sha[:12]} ({r.kind})")
    image_jobs = plan(cfg, services, resolved, env, platform)
    for job in image_jobs:
        if job.yields:
            tag, owner = job.yields
            on_event(job.service, "tags", f"{job.spec_repository}:{tag} is {owner}'s (the first service in "
                     f"damso.toml with this image and ref); this image is tagged {job.key_tag} only")  # fmt: skip
    api = None
    if auth and not force:
        api = registry_api.Reader(auth.host, auth.username, auth.password, os.environ if environ is None else environ)
    try:
        outcomes = run_builds(client, image_jobs, resolved, cache_root, auth=auth, push=push, force=force,
                              platform=platform, jobs=jobs, on_event=on_event, previous=seeds.previous_images(cfg.state_dir),
                              builder_kind=lambda: layer_cache.builder_kind((buildx or seeds.buildx_available)()),
                              no_cache=no_cache, api=api)  # fmt: skip
    finally:
        if api:
            api.close()
    result_manifest = manifest_for(image_jobs, outcomes, env)
    path = manifests.save(cfg.state_dir, result_manifest)
    return BuildResult(result_manifest, outcomes, path)
