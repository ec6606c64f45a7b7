"""Build, push and look up images with the Docker SDK (client passed in by the caller)."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from damso_ops import redact
from damso_ops.config import Registry
from damso_ops.errors import DamsoError
from damso_ops.images import registry_api

log = logging.getLogger("damso.images")

_TAG_BAD = re.compile(r"[^A-Za-z0-9_.-]")

# The registry is reached through the Docker engine, which retries each layer upload itself
# (dockerd's max-upload-attempts, 5 by default) but neither a manifest PUT nor a lookup.
# damso makes REGISTRY_ATTEMPTS attempts in all at each push and lookup that fails on the
# network or with a 5xx (the same tag pushed again is the same manifest: idempotent),
# RETRY_DELAY seconds apart, doubling. docs/deploy.md ("Faults") says the same.
REGISTRY_ATTEMPTS = 3
RETRY_DELAY = 1.0
_NETWORK = (  # what the engine's message says → in words; the first match wins
    ("connection reset", "connection reset"),
    ("connection refused", "connection refused"),
    ("broken pipe", "connection closed"),
    ("eof", "connection closed"),
    ("timeout", "no answer in time"),
    ("timed out", "no answer in time"),
    ("no such host", "host not found"),
    ("500 internal server error", "the registry failed (500)"),
    ("502 bad gateway", "the registry failed (502)"),
    ("503 service unavailable", "the registry failed (503)"),
    ("504 gateway timeout", "the registry failed (504)"),
)


class RegistryUnreachable(DamsoError):
    """The registry could not be reached (or failed) on every attempt."""


def network_failure(text: str) -> str | None:
    """What a network failure in an engine's error text was, in words; None if it was not one."""
    lowered = text.lower()
    return next((words for needle, words in _NETWORK if re.search(rf"\b{re.escape(needle)}\b", lowered)), None)


def with_retries(host: str, call: Callable[[], object], *, sleep: Callable[[float], None] = time.sleep):
    """call(), again on a network failure (DamsoError whose text network_failure knows), up to
    REGISTRY_ATTEMPTS attempts; then RegistryUnreachable naming the registry and the retries."""
    for attempt in range(1, REGISTRY_ATTEMPTS + 1):
        try:
            return call()
        except RegistryUnreachable:
            raise
        except DamsoError as exc:
            what = network_failure(exc.message)
            if what is None:
                raise
            if attempt == REGISTRY_ATTEMPTS:
                retries = attempt - 1
                raise RegistryUnreachable(
                    f"Could not reach the registry at {host}: {what} "
                    f"(after {retries} {'retry' if retries == 1 else 'retries'}).",
                    hint="Check the network and the registry, then run the command again.",
                    details=exc.message,
                ) from None
            log.debug("registry %s: %s; attempt %d of %d", host, what, attempt + 1, REGISTRY_ATTEMPTS)
            sleep(RETRY_DELAY * 2 ** (attempt - 1))


@dataclass(frozen=True)
class RegistryAuth:
    host: str
    username: str
    password: str = field(repr=False)
    source: str  # where the credential came from, for error messages

    def auth_config(self) -> dict[str, str]:
        return {"username": self.username, "password": self.password, "serveraddress": self.host}


@dataclass(frozen=True)
class BuildSpec:
    """Everything that decides an image's content, and where it goes."""

    context: Path
    dockerfile: str
    repository: str  # host/namespace/image
    tags: tuple[str, ...]
    build_args: Mapping[str, str]
    labels: Mapping[str, str]
    platform: str


class BuildFailed(DamsoError):
    def __init__(self, message: str, log_tail: str):
        super().__init__(message, details=log_tail)
        self.log_tail = log_tail


def tag_safe(name: str) -> str:
    """A git ref name as a valid image tag (feature/x → feature-x)."""
    return _TAG_BAD.sub("-", name).lstrip(".-")[:128] or "ref"


def credentials(registry: Registry, environ: Mapping[str, str] | None = None) -> RegistryAuth:
    """From the configured environment variables, else from the docker config file."""
    environ = os.environ if environ is None else environ
    user, password = environ.get(registry.username_env), environ.get(registry.password_env)
    if user and password:
        redact.register(password)
        return RegistryAuth(registry.host, user, password, f"${registry.username_env}/${registry.password_env}")
    from docker import auth as docker_auth

    entry = docker_auth.resolve_authconfig(docker_auth.load_config(), registry=registry.host) or {}
    if entry.get("username") and entry.get("password"):
        redact.register(entry["password"])
        return RegistryAuth(registry.host, entry["username"], entry["password"], "the docker config file")
    unset = [(k, v) for k, v in (("username_env", registry.username_env), ("password_env", registry.password_env)) if not environ.get(v)]
    keys = " and ".join(f"registry.{k}" for k, _ in unset)
    raise DamsoError(
        f"No credentials for registry {registry.host}.",
        hint=f"Set {' and '.join(v for _, v in unset)} (named by {keys}; for GHCR: a token with write:packages), "
        f"or run 'docker login {registry.host}'.",
    )


def login(client, auth: RegistryAuth) -> None:
    """Fail before any build when the registry rejects the credential."""
    import docker.errors

    try:
        client.login(username=auth.username, password=auth.password, registry=auth.host, reauth=True)
    except docker.errors.APIError as exc:
        raise DamsoError(
            f"Registry {auth.host} rejected the credentials of user '{auth.username}' "
            f"(from {auth.source}): {redact.redact(exc.explanation or str(exc))}.",
            hint="Check the username and token.",
        ) from None


def remote_digest(client, ref: str, auth: RegistryAuth | None, api: registry_api.Reader | None = None) -> str | None:
    """The manifest digest of ref in its registry, or None when it is not there. Asked of the
    registry's API (api: a registry_api.Reader) when it can answer, else through the engine,
    with retries."""
    if api is not None:
        try:
            return api.digest(ref)
        except registry_api.Unusable as exc:
            log.debug("registry API of %s: %s; asking through the engine", api.host, exc)
    return with_retries(ref.split("/", 1)[0], lambda: _remote_digest(client, ref, auth))


def _remote_digest(client, ref: str, auth: RegistryAuth | None) -> str | None:
    import docker.errors

    try:
        data = client.api.inspect_distribution(ref, auth_config=auth.auth_config() if auth else None)
    except docker.errors.NotFound:
        return None
    except docker.errors.APIError as exc:
        text = (exc.explanation or str(exc)).lower()
        if "manifest unknown" in text or "not found" in text or "name unknown" in text:
            return None
        raise DamsoError(f"Cannot ask the registry about {ref}: {redact.redact(text)}.") from None
    return data["Descriptor"]["digest"]


def build(client, spec: BuildSpec, on_line: Callable[[str], None] | None = None, *,
          cache_from: tuple[str, ...] = (), nocache: bool = False) -> str:  # fmt: skip
    """Build with the engine's (legacy) builder; return the image id. Raises BuildFailed with the
    log tail. cache_from: local images (pulled first) whose layers steps may reuse."""
    import docker.errors

    lines: list[str] = []

    def emit(text: str) -> None:
        for line in redact.redact(text).splitlines():
            if line.strip():
                lines.append(line)
                if on_line:
                    on_line(line)

    dockerfile = spec.context / spec.dockerfile
    if not dockerfile.is_file():
        raise BuildFailed(f"{spec.dockerfile} does not exist in the build context {spec.context}.", "")
    image_id = None
    try:
        stream = client.api.build(
            path=str(spec.context),
            dockerfile=spec.dockerfile,
            tag=f"{spec.repository}:{spec.tags[0]}",
            buildargs=dict(spec.build_args),
            labels=dict(spec.labels),
            platform=spec.platform,
            rm=True,
            forcerm=True,
            pull=False,
            cache_from=list(cache_from) or None,
            nocache=nocache,
            decode=True,
        )
        for chunk in stream:
            if "stream" in chunk:
                emit(chunk["stream"])
            if "error" in chunk:
                emit(chunk["error"])
                raise BuildFailed(f"Build failed: {chunk['error'].strip()}", "\n".join(lines[-20:]))
            if "aux" in chunk and "ID" in chunk["aux"]:
                image_id = chunk["aux"]["ID"]
    except docker.errors.APIError as exc:
        emit(exc.explanation or str(exc))
        raise BuildFailed(f"Build failed: {exc.explanation or exc}", "\n".join(lines[-20:])) from None
    if not image_id:
        raise BuildFailed("Build produced no image.", "\n".join(lines[-20:]))
    for tag in spec.tags[1:]:
        client.api.tag(image_id, spec.repository, tag)
    return image_id


def push(client, repository: str, tag: str, auth: RegistryAuth, on_line: Callable[[str], None] | None = None) -> str:
    """Push one tag (with retries); return the manifest digest the registry reports."""
    return with_retries(repository.split("/", 1)[0], lambda: _push(client, repository, tag, auth, on_line))


def _push(client, repository: str, tag: str, auth: RegistryAuth, on_line: Callable[[str], None] | None) -> str:
    digest = None
    for chunk in client.api.push(repository, tag=tag, auth_config=auth.auth_config(), stream=True, decode=True):
        if "error" in chunk:
            raise DamsoError(f"Push of {repository}:{tag} failed: {redact.redact(chunk['error'].strip())}.")
        if "aux" in chunk and "Digest" in chunk["aux"]:
            digest = chunk["aux"]["Digest"]
        elif on_line and chunk.get("status") and not chunk.get("progressDetail"):
            on_line(f"{chunk['status']} {chunk.get('id', '')}".strip())
    if not digest:
        raise DamsoError(f"Push of {repository}:{tag} reported no digest.")
    return digest


def push_tags(client, repository: str, key_tag: str, tags: list[str], digest: str, auth: RegistryAuth,
              on_line: Callable[[str], None] | None = None) -> None:  # fmt: skip
    """Push tags of the image the registry has as key_tag (digest): from the local image when
    the engine has it, else pulled first. Raises unless the registry then answers each with digest."""
    import docker.errors

    source = f"{repository}:{key_tag}"
    try:
        client.api.inspect_image(source)
    except docker.errors.ImageNotFound:
        with_retries(repository.split("/", 1)[0], lambda: _pull(client, repository, key_tag, auth))
    for tag in tags:
        client.api.tag(source, repository, tag)
        if push(client, repository, tag, auth, on_line) != digest:
            raise DamsoError(
                f"The registry answers {repository}:{tag} with another image than {key_tag}.",
                hint="Build again with --force.",
            )


def pull_ref(client, ref: str, auth: RegistryAuth | None) -> None:
    """Pull repository@digest (or repository:tag) into the engine, once; DamsoError if it fails."""
    repository, sep, digest = ref.partition("@")
    if not sep:
        repository, _, digest = ref.rpartition(":")
    _pull(client, repository, digest, auth)


def _pull(client, repository: str, tag: str, auth: RegistryAuth | None) -> None:
    import docker.errors

    try:
        client.api.pull(repository, tag=tag, auth_config=auth.auth_config() if auth else None)
    except docker.errors.APIError as exc:
        raise DamsoError(f"Pull of {repository}:{tag} failed: {redact.redact(exc.explanation or str(exc))}.") from None
