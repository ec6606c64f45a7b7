"""What a deploy or plan is asked to do, resolved once and checked before AWS is touched:
the roles, the images pinned from the build manifest, the stacks, the secrets they need."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from damso_ops import secrets
from damso_ops.images import jobs, manifest as manifests
from damso_ops.config import Config, Environment
from damso_ops.deploy import livekit_keys, render, stacks
from damso_ops.errors import ConfigError, DamsoError, UsageError


@dataclass(frozen=True)
class DeployRequest:
    env_name: str
    roles: tuple[str, ...]  # the roles to render and converge
    only: bool  # --only was given: the other roles keep their files from the current release
    build: manifests.BuildManifest
    images: dict[str, str]  # service → pinned image
    stacks: tuple[str, ...]  # stacks to plan, shared first

    def image_info(self) -> dict[str, dict]:
        """What a release manifest says of each image: pinned reference, commit, ref, repository."""
        return {s: _image_info(self.build.images[s]) for s in self.images}


def _image_info(rec: manifests.ImageRecord) -> dict:
    return {"image": rec.pinned, "commit": rec.commit, "ref": rec.ref, "repository": rec.repository}


def selected_roles(env_name: str, env: Environment, only: list[str]) -> list[str]:
    unknown = [r for r in only if r not in env.roles]
    if unknown:
        raise UsageError(
            f"Unknown role {', '.join(repr(r) for r in unknown)} in {env_name} "
            f"(roles: {', '.join(sorted(env.roles)) or 'none'})."
        )
    return list(only) or list(env.roles)


def manifest_path(cfg: Config, build_manifest: Path | None) -> Path:
    """The build manifest images are pinned from: the one given, else the latest build's."""
    return build_manifest or manifests.builds_dir(cfg.state_dir) / "latest.json"


def load_images(cfg: Config, env_name: str, build_manifest: Path | None,
                roles: list[str]) -> tuple[manifests.BuildManifest, dict[str, str]]:  # fmt: skip
    env = cfg.environment(env_name)
    path = manifest_path(cfg, build_manifest)
    needed = {s for r in roles for s in env.roles[r].services}
    if not needed and not build_manifest:  # e.g. only the LiveKit server: its images come from config
        return manifests.BuildManifest(id=None, created="", env=None), {}
    bm = manifests.load(path)
    missing = sorted(needed - set(bm.images))
    if missing:
        raise DamsoError(
            f"The build manifest {path} has no image for {', '.join(missing)}.",
            hint=f"Run 'damso build {' '.join(missing)}' first.",
        )
    unpinned = sorted(s for s in needed if not bm.images[s].digest)
    if unpinned:
        raise DamsoError(
            f"Images for {', '.join(unpinned)} were built with --no-push and have no registry digest.",
            hint="Build them again with push on.",
        )
    check_build_args(cfg, env_name, bm, needed)
    return bm, {s: bm.images[s].pinned for s in needed}


def check_build_args(cfg: Config, env_name: str, bm: manifests.BuildManifest, services) -> None:
    """An image that bakes in per-environment settings (env_build_args) is deployed only to an
    environment whose build args it was built with: prod's console must not call dev's API."""
    for name in sorted(services):
        svc = cfg.services.get(name)
        if svc is None or not svc.env_build_args:
            continue
        rec = bm.images[name]
        wanted = jobs.build_args_for(name, svc, cfg, env_name)
        differ = [k for k in svc.env_build_args if rec.build_args.get(k) != wanted[k]]
        if not differ:
            continue
        args = ", ".join(differ)
        built_for = rec.env or _env_with_args(cfg, svc, rec)
        if built_for == env_name:
            what = f"with {env_name}'s earlier {args} (changed in {cfg.path.name} since)"
        elif built_for:
            what = f"for {built_for}, so it would carry {built_for}'s {args} into {env_name}"
        else:
            what = f"with {args} of no environment in {cfg.path.name}, not {env_name}'s"
        ref = f"--ref {rec.ref} " if rec.ref else ""
        raise DamsoError(f"The {name} image was built {what}; run 'damso build {ref}{name} --env {env_name}', then deploy again.")


def _env_with_args(cfg: Config, svc, rec: manifests.ImageRecord) -> str | None:
    """The environment whose build args an image (from a manifest that records none) has, if one."""
    for name, env in cfg.environments.items():
        if all(rec.build_args.get(k) == env.build_args.get(k) for k in svc.env_build_args):
            return name
    return None


def resolve(cfg: Config, env_name: str, only: list[str] | None, build_manifest: Path | None) -> DeployRequest:
    """Everything that can be checked before touching AWS: bad input changes nothing."""
    env = cfg.environment(env_name)
    roles = selected_roles(env_name, env, only or [])
    bm, images = load_images(cfg, env_name, build_manifest, roles)
    stacks.check_references(env_name, env)
    check_templates(cfg, env_name, roles)
    every = stacks.stack_names(env_name, env)
    role_stacks = {env.roles[r].stack_name(r) for r in roles}
    chosen = [s for s in every if not only or s == "shared" or s in role_stacks]
    if not shutil.which("terraform"):
        raise DamsoError("terraform is not on the PATH.", hint="Install Terraform 1.10 or newer, then run 'damso doctor'.")
    return DeployRequest(env_name, tuple(roles), bool(only), bm, images, tuple(chosen))


def check_templates(cfg: Config, env_name: str, roles) -> None:
    """Each role's compose template exists: a typo in compose_template fails here, not after the
    stacks are applied, where the release is rendered."""
    import jinja2

    jenv = render.template_env(cfg)
    for role_name in roles:
        role = cfg.environments[env_name].roles[role_name]
        name = role.compose_template or f"compose/{role_name}.yml.j2"
        try:
            jenv.loader.get_source(jenv, name)
        except jinja2.TemplateNotFound:
            key = f"environments.{env_name}.roles.{role_name}.compose_template"
            raise ConfigError(f"{key}: template {name} was not found in {cfg.root / 'templates'} or damso's own "
                              f"(set {key} to one of yours).") from None  # fmt: skip


def needed_secrets(env: Environment, roles) -> dict[str, list[str]]:
    """Role → secret names to find in SSM. LiveKit's key pair is ensure_keys' business, and
    other roles of an environment with a LiveKit server get theirs from it (copy_livekit_keys)."""
    def own(role: str, name: str) -> bool:
        if name == "REDIS_AUTH_TOKEN" and "data" in env.stacks:  # made by damso with the data stack (deploy/redis.py)
            return False
        return name not in livekit_keys.KEY_NAMES or (role != livekit_keys.ROLE and livekit_keys.ROLE not in env.roles)

    return {r: [n for n in env.roles[r].secrets if own(r, n)] for r in roles}


def copy_livekit_keys(ssm, env_name: str, env: Environment, roles, dry_run: bool) -> list[str]:
    """The api and agent use the LiveKit server's keys: one source of truth, the pair `damso livekit
    up` keeps in SSM, copied to each role that lists LIVEKIT_API_KEY/SECRET among its secrets."""
    wanted = {r: [n for n in env.roles[r].secrets if n in livekit_keys.KEY_NAMES] for r in roles if r != livekit_keys.ROLE}
    wanted = {r: names for r, names in wanted.items() if names}
    if not wanted or livekit_keys.ROLE not in env.roles:
        return []
    pair = livekit_keys.read_keys(ssm, env_name)
    if pair is None:
        if dry_run and livekit_keys.ROLE in roles:  # this deploy makes them first
            return [f"{r}/{n} (from the LiveKit keys)" for r, names in wanted.items() for n in names]
        raise DamsoError(f"{', '.join(wanted)} of {env_name} need the LiveKit server's keys, which do not exist yet.",
                         hint=f"Run 'damso livekit up --env {env_name}' (or deploy the livekit role) first.")  # fmt: skip
    values = dict(zip(livekit_keys.KEY_NAMES, pair))
    names = [secrets.parameter(env_name, r, n) for r, ns in wanted.items() for n in ns]
    have = {p["Name"]: p["Value"] for p in ssm.get_parameters(Names=names, WithDecryption=True)["Parameters"]}
    copied = []
    for role, role_names in sorted(wanted.items()):
        for name in role_names:
            if have.get(secrets.parameter(env_name, role, name)) != values[name]:
                if not dry_run:
                    secrets.put(ssm, env_name, role, name, values[name])
                copied.append(f"{role}/{name} (from the LiveKit keys)")
    return copied


def ensure_secrets(ssm, env_name: str, env: Environment, state_dir: Path, roles, dry_run: bool) -> list[str]:
    """Every secret the roles need is in SSM, seeded from the environment or the local file,
    and LiveKit keys exist and are well formed. Returns what was (or would be) stored.
    With dry_run, only checks: run before the deploy lock (and its state bucket) is made."""
    done = []
    if livekit_keys.ROLE in roles:
        how = livekit_keys.ensure_keys(ssm, env_name, state_dir, os.environ, dry_run=dry_run)
        if how:
            done.append(f"{how} LiveKit key pair")
    done += copy_livekit_keys(ssm, env_name, env, roles, dry_run)
    files = {r: list(env.roles[r].secret_files) for r in roles if env.roles[r].secret_files}
    done += secrets.ensure(ssm, env_name, needed_secrets(env, roles), state_dir, dry_run=dry_run, needed_files=files)
    return done
