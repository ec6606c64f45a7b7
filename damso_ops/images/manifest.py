"""The build manifest: which commit became which image digest. Deploys pin to it."""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from damso_ops import values
from damso_ops.errors import DamsoError


@dataclass(frozen=True)
class ImageRecord:
    service: str
    repository: str  # name in damso.toml
    url: str
    ref: str
    commit: str
    image: str  # host/namespace/name
    tags: list[str]
    digest: str | None  # sha256:… as the registry reports it (None with --no-push)
    build_args: dict[str, str]
    status: str  # built | skipped | failed
    built_at: str
    env: str | None = None  # the environment whose build args it bakes in (None: no per-environment args)

    @property
    def pinned(self) -> str:
        """The reference a deploy uses: by digest when known."""
        return f"{self.image}@{self.digest}" if self.digest else f"{self.image}:{self.tags[0]}"


@dataclass(frozen=True)
class BuildManifest:
    id: str
    created: str
    env: str | None
    images: dict[str, ImageRecord] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "created": self.created,
            "env": self.env,
            "images": {name: asdict(rec) for name, rec in sorted(self.images.items())},
        }

    @classmethod
    def from_dict(cls, data: dict) -> "BuildManifest":
        return cls(
            id=data["id"],
            created=data["created"],
            env=data.get("env"),
            images={name: ImageRecord(**rec) for name, rec in data.get("images", {}).items()},
        )


def builds_dir(state_dir: Path) -> Path:
    return state_dir / "builds"


def save(state_dir: Path, manifest: BuildManifest) -> Path:
    """Write builds/<id>.json, and merge the usable images into builds/latest.json."""
    folder = builds_dir(state_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{manifest.id}.json"
    _write_json(path, manifest.to_dict())
    try:
        previous = load(folder / "latest.json")
        images = dict(previous.images)
    except DamsoError:
        images = {}
    images.update({n: r for n, r in manifest.images.items() if r.status != "failed"})
    latest = BuildManifest(id=manifest.id, created=manifest.created, env=manifest.env, images=images)
    _write_json(folder / "latest.json", latest.to_dict())
    return path


def load(path: Path) -> BuildManifest:
    if path.is_dir():
        raise DamsoError(f"Build manifest {path} is a folder; pass a manifest file like {path / 'latest.json'}.")
    try:
        manifest = BuildManifest.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise DamsoError(f"No build manifest at {path}.", hint="Run 'damso build' first.") from None
    except OSError as exc:
        raise DamsoError(f"Build manifest {path} cannot be read: {exc.strerror}.") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DamsoError(f"Build manifest {path} is unreadable: {type(exc).__name__}: {exc}.") from None
    for name, rec in manifest.images.items():
        problem = _record_problem(rec)
        if problem:
            raise DamsoError(f"Build manifest {path}: images.{name} {problem}.")
    return manifest


DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
COMMIT = re.compile(r"^[0-9a-f]{40}$")


def _record_problem(rec: ImageRecord) -> str | None:
    """What makes a record unusable for a deploy (a hand-edited or truncated manifest), if anything."""
    if not isinstance(rec.image, str) or not rec.image or any(c.isspace() for c in rec.image):
        return f"has no usable image name ({rec.image!r})"
    if rec.digest is not None and not (isinstance(rec.digest, str) and DIGEST.match(rec.digest)):
        return f"has digest {rec.digest!r}, not sha256:<64 hex digits>"
    if not isinstance(rec.commit, str) or not COMMIT.match(rec.commit):
        return f"has commit {rec.commit!r}, not a 40-character commit SHA"
    if not isinstance(rec.tags, list) or not rec.tags or not all(isinstance(t, str) and t for t in rec.tags):
        return f"has tags {rec.tags!r}, not a list of tags"
    problem = values.image_reference(rec.pinned)
    if problem:
        return f"has image {problem}"
    return None


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)  # never leave a half-written manifest behind
