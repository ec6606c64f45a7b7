"""Builds with BuildKit through `docker buildx build` (commands as data; runner.run runs them).

Used where the docker CLI has the buildx plugin; the engine's legacy builder
(builder.build, through the Docker SDK) everywhere else. The image is loaded into the
engine (--load), then tagged and pushed like a legacy build's.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from pathlib import Path

from damso_ops import runner
from damso_ops.errors import DamsoError
from damso_ops.images.builder import BuildFailed, BuildSpec, RegistryAuth
from damso_ops.runner import Command


def probe() -> Command:
    """Exits 0 where the docker CLI has buildx."""
    return Command(("docker", "buildx", "version"))


def available() -> bool:
    try:
        return runner.run(probe(), check=False, timeout=30).ok
    except DamsoError:  # no docker CLI at all
        return False


def build_command(spec: BuildSpec, *, cache_from: str | None, no_cache: bool, iidfile: Path,
                  config_dir: Path | None = None) -> Command:  # fmt: skip
    """docker buildx build for spec: the previous image as registry cache, inline cache
    metadata written into the new image (what the next cold build reads)."""
    argv = ["docker", "buildx", "build", "--progress", "plain", "--load", "--iidfile", str(iidfile),
            "--file", str(spec.context / spec.dockerfile), "--platform", spec.platform]  # fmt: skip
    for tag in spec.tags:
        argv += ["--tag", f"{spec.repository}:{tag}"]
    for key, value in sorted(spec.build_args.items()):
        argv += ["--build-arg", f"{key}={value}"]
    for key, value in sorted(spec.labels.items()):
        argv += ["--label", f"{key}={value}"]
    if no_cache:
        argv.append("--no-cache")
    elif cache_from:
        argv += ["--cache-from", f"type=registry,ref={cache_from}"]
    argv += ["--cache-to", "type=inline", str(spec.context)]
    return Command(tuple(argv), env={"DOCKER_CONFIG": str(config_dir)} if config_dir else {})


def config_for(auth: RegistryAuth) -> dict:
    """A docker CLI config holding only this registry's credential (for BuildKit's cache import)."""
    token = base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode()
    return {"auths": {auth.host: {"auth": token}}}


@contextmanager
def private_config(auth: RegistryAuth | None, environ: Mapping[str, str] | None = None):
    """A docker config folder with damso's credential, readable by its owner only, removed after;
    None when the credential came from the user's own docker config (the CLI finds it there).
    The user's CLI plugins (buildx) stay reachable through a link."""
    if auth is None or auth.source == "the docker config file":
        yield None
        return
    environ = os.environ if environ is None else environ
    user_config = Path(environ.get("DOCKER_CONFIG") or Path.home() / ".docker")
    with tempfile.TemporaryDirectory(prefix="damso-docker-") as folder:
        path = Path(folder)
        os.chmod(path, 0o700)
        config = path / "config.json"
        config.touch(mode=0o600)
        config.write_text(json.dumps(config_for(auth)))
        if (user_config / "cli-plugins").is_dir():
            (path / "cli-plugins").symlink_to(user_config / "cli-plugins")
        yield path


def build(spec: BuildSpec, *, cache_from: str | None, no_cache: bool, auth: RegistryAuth | None,
          on_line: Callable[[str], None] | None = None) -> str:  # fmt: skip
    """Build with buildx; return the image id. Raises BuildFailed with the log tail."""
    if not (spec.context / spec.dockerfile).is_file():
        raise BuildFailed(f"{spec.dockerfile} does not exist in the build context {spec.context}.", "")
    with tempfile.TemporaryDirectory(prefix="damso-iid-") as tmp, private_config(auth) as config_dir:
        iidfile = Path(tmp) / "iid"
        command = build_command(spec, cache_from=cache_from, no_cache=no_cache, iidfile=iidfile,
                                config_dir=config_dir)  # fmt: skip
        result = runner.run(command, check=False, on_line=on_line)
        if not result.ok:
            raise BuildFailed(f"Build failed (docker buildx exited {result.returncode}).", result.tail())
        image_id = iidfile.read_text().strip() if iidfile.exists() else ""
    if not image_id:
        raise BuildFailed("Build produced no image.", result.tail())
    return image_id
