"""What a build will do, decided before anything is built: refs parsed, one job per image
with its key tag, tags, build args and labels (pure logic, no I/O)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from damso_ops import values
from damso_ops.images import builder, sources
from damso_ops.config import Config, Service
from damso_ops.errors import UsageError

DEFAULT_PLATFORM = "linux/amd64"


@dataclass(frozen=True)
class RefRequest:
    """--ref REF (all repos) and --ref repo=REF (one repo), parsed."""

    default: str | None = None
    per_repo: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, values: list[str], known_repos: list[str]) -> "RefRequest":
        default, per_repo = None, {}
        for value in values:
            repo, sep, ref = value.partition("=")
            if not sep:
                if default is not None:
                    raise UsageError(f"--ref given twice without a repository ('{default}' and '{value}').")
                _check_ref(value, value)
                default = value
                continue
            if repo not in known_repos:
                raise UsageError(f"--ref {value}: unknown repository '{repo}' (known: {', '.join(sorted(known_repos))}).")
            if not ref:
                raise UsageError(f"--ref {value}: the ref after '=' is empty.")
            _check_ref(value, ref)
            per_repo[repo] = ref
        return cls(default, per_repo)

    def for_repo(self, repo: str, fallback: str) -> str:
        return self.per_repo.get(repo) or self.default or fallback


def _check_ref(value: str, ref: str) -> None:
    problem = values.git_ref(ref)
    if problem:
        raise UsageError(f"--ref {value!r}: {problem}." if value.strip() else f"--ref {problem}.")


def check_request(cfg: Config, service_names: list[str], ref_values: list[str], env: str | None,
                  platform: str) -> tuple[dict[str, Service], RefRequest]:  # fmt: skip
    """Everything about a build that needs no engine, registry or network, checked first:
    the services, the refs and their repositories, the environment and its build args, the platform."""
    services = cfg.select_services(service_names)
    refs = RefRequest.parse(ref_values, list(cfg.repositories))
    if env is not None:
        cfg.environment(env)
    for name, svc in services.items():
        build_args_for(name, svc, cfg, env)  # --env missing → fail now, not mid-build
    unused = set(refs.per_repo) - {svc.repo for svc in services.values()}
    if unused:
        raise UsageError(f"--ref names {', '.join(sorted(unused))}, which none of the selected services builds from.")
    problem = values.platform(platform)
    if problem:
        raise UsageError(f"--platform {problem}.")
    return services, refs


@dataclass(frozen=True)
class ImageJob:
    """One image to produce: decided entirely before anything is built."""

    service: str
    source: sources.Resolved
    spec_repository: str
    key_tag: str  # sha-<12>[-<args hash>]: the registry lookup key
    tags: tuple[str, ...]
    build_args: Mapping[str, str]
    context: str
    dockerfile: str
    env: str | None = None  # the environment whose build args are baked in (services with env_build_args)
    # (ref tag, service): the ref tag this image would have had, left to an earlier service
    # in damso.toml that builds another image into the same repository under that tag.
    yields: tuple[str, str] | None = None


def build_args_for(name: str, svc: Service, cfg: Config, env: str | None) -> dict[str, str]:
    args = dict(svc.build_args)
    if svc.env_build_args:
        if env is None:
            raise UsageError(
                f"Service '{name}' bakes per-environment settings into its image "
                f"({', '.join(svc.env_build_args)}); pass --env ENV."
            )
        env_cfg = cfg.environment(env)
        args.update({k: env_cfg.build_args[k] for k in svc.env_build_args})
    return args


def key_tag(sha: str, build_args: Mapping[str, str], platform: str) -> str:
    """sha-<12>, plus a hash when build args or a non-default platform shape the image."""
    tag = f"sha-{sha[:12]}"
    if build_args or platform != DEFAULT_PLATFORM:
        blob = "\n".join(f"{k}={v}" for k, v in sorted(build_args.items())) + f"\nplatform={platform}"
        tag += "-" + hashlib.sha256(blob.encode()).hexdigest()[:8]
    return tag


def plan(
    cfg: Config,
    services: dict[str, Service],
    resolved: dict[str, sources.Resolved],
    env: str | None,
    platform: str,
) -> list[ImageJob]:
    """One job per service, in the order given. A ref tag (main, v3) belongs to one image: when
    two services build different images into one repository under the same ref tag, the first
    in damso.toml keeps it and the other gets only its key tag (else the tag would move to
    whichever pushed last, and every rebuild would move it again)."""
    decided = {}  # service → (build args, key tag, image repository, ref tag or None)
    for name, svc in services.items():
        src = resolved[svc.repo]
        args = build_args_for(name, svc, cfg, env)
        ref_tag = _ref_tag(src.ref, svc, env) if src.kind in ("tag", "branch") else None
        decided[name] = (args, key_tag(src.sha, args, platform), cfg.registry.image_repo(svc.image), ref_tag)
    owners: dict[tuple[str, str], tuple[str, str]] = {}  # (repository, ref tag) → (service, key tag)
    for name in sorted(services, key=list(cfg.services).index):
        _, key, repository, ref_tag = decided[name]
        if ref_tag:
            owners.setdefault((repository, ref_tag), (name, key))
    image_jobs = []
    for name, svc in services.items():
        args, key, repository, ref_tag = decided[name]
        tags, yields = [key], None
        if ref_tag:
            owner, owner_key = owners[(repository, ref_tag)]
            if owner_key == key:  # its own, or the same image as its owner's
                tags.append(ref_tag)
            else:
                yields = (ref_tag, owner)
        image_jobs.append(
            ImageJob(
                service=name,
                source=resolved[svc.repo],
                spec_repository=repository,
                key_tag=key,
                tags=tuple(tags),
                build_args=args,
                context=svc.context,
                dockerfile=svc.dockerfile,
                env=env if svc.env_build_args else None,
                yields=yields,
            )
        )
    return image_jobs


def _ref_tag(ref: str, svc: Service, env: str | None) -> str:
    tag = builder.tag_safe(ref)
    return f"{tag}-{env}" if svc.env_build_args else tag


def labels(job: ImageJob, created: str) -> dict[str, str]:
    return {
        "org.opencontainers.image.revision": job.source.sha,
        "org.opencontainers.image.source": job.source.url,
        "org.opencontainers.image.created": created,
        "org.opencontainers.image.ref.name": job.source.ref,
    }
