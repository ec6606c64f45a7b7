"""damso render: every file a host of a role would get, written locally, with no AWS account.

The files come from the deploy's own renderer (deploy/render.py), so what is shown is what a
deploy would ship. What only AWS knows is filled in when it can be read and marked otherwise:

- Terraform outputs (`${api.private_ip}`, the artifact bucket) come from the stacks' state
  objects when the environment's state can be read (credentials found, or the sandbox's
  emulator running), else they are `<stack.output>` placeholders;
- images come from the build manifest, pinned by digest; a service not built yet gets the
  tag `not-built` (a valid reference, so compose still checks the file);
- secrets are names only: `secrets.env` and the filled `X` of each `X.in` show where the host
  takes each value from (`<ssm:/damso/ENV/ROLE/NAME>`), never a value.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from damso_ops import sandbox, secrets
from damso_ops.aws import AwsEndpoint, explain
from damso_ops.images import manifest as manifests
from damso_ops.config import Config
from damso_ops.deploy import livekit_keys, render, request, stacks
from damso_ops.deploy.outputs import state_outputs
from damso_ops.deploy.target import Target
from damso_ops.errors import DamsoError, UsageError

NOT_BUILT = "not-built"
USER_DATA = "user-data.sh"
MARKER = ".damso-render.json"  # in each role folder: the files the last render wrote there
NODE_IP = "<this instance's public IP, from the instance metadata>"
# How each file reaches the host.
RELEASE = "release"  # in the release, s3://<artifact bucket>/<env>/releases/<id>/<role>/
LAUNCH = "user-data"  # the instance's user-data, set by Terraform at launch
HOST = "host"  # written on the host by the reconcile unit, values from SSM (names only here)
FILLED = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class HostFile:
    name: str
    text: str
    delivery: str  # RELEASE, LAUNCH or HOST

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


@dataclass(frozen=True)
class RolePreview:
    role: str
    files: tuple[HostFile, ...]
    images: Mapping[str, str]  # service → the image its compose file names
    not_built: tuple[str, ...]  # services with no pinned image in the build manifest
    secrets: tuple[str, ...]  # names the host reads from SSM


@dataclass(frozen=True)
class Outputs:
    values: Mapping[str, Mapping[str, object]]  # stack → outputs, from state or placeholders
    from_state: tuple[str, ...]
    placeholders: tuple[str, ...]
    note: str  # why some stacks are placeholders ("" when every one came from state)


@dataclass(frozen=True)
class Preview:
    env: str
    roles: tuple[RolePreview, ...]
    outputs: Outputs
    build_manifest: str | None  # the manifest images were pinned from, None when there is none

    def to_dict(self, out: Path | None = None) -> dict:
        def files(r: RolePreview) -> list[dict]:
            return [{"name": f.name, "delivery": f.delivery, "sha256": f.sha256,
                     **({"path": str(out / r.role / f.name)} if out else {})} for f in r.files]  # fmt: skip

        return {
            "env": self.env,
            "out": str(out) if out else None,
            "build_manifest": self.build_manifest,
            "outputs": {"from_state": list(self.outputs.from_state), "placeholders": list(self.outputs.placeholders),
                        "note": self.outputs.note},  # fmt: skip
            "roles": {r.role: {"files": files(r), "images": dict(r.images), "not_built": list(r.not_built),
                               "secrets": list(r.secrets)} for r in self.roles},  # fmt: skip
        }


# ---- Terraform outputs ----------------------------------------------------------------


def placeholders(stack: str) -> dict[str, str]:
    """Every output the stack declares, as `<stack.output>`."""
    return {name: f"<{stack}.{name}>" for name in stacks.declared_outputs(stack)}


def outputs(names: Sequence[str], found: Mapping[str, Mapping | None], note: str) -> Outputs:
    """The outputs of every stack: those found in state, placeholders for the rest."""
    have = [s for s in names if found.get(s)]
    missing = tuple(s for s in names if s not in have)
    values = {s: dict(found[s]) if s in have else placeholders(s) for s in names}
    if missing and not note:
        note = "never applied"
    return Outputs(values, tuple(have), missing, note if missing else "")


def state_endpoint(cfg: Config, env_name: str) -> tuple[AwsEndpoint | None, str]:
    """Where the environment's state can be read from without starting anything, or why not."""
    env = cfg.environments[env_name]
    if env.sandbox:
        server = sandbox.running(cfg.state_dir)
        if server is None:
            return None, "the sandbox's emulator is not running (damso deploy starts it)"
        return AwsEndpoint(env.region, server.endpoint_url), ""
    import boto3

    if boto3.session.Session().get_credentials() is None:
        return None, "no AWS credentials were found"
    return AwsEndpoint(env.region), ""


def read_state(cfg: Config, env_name: str, names: Sequence[str]) -> tuple[dict[str, dict | None], str, list[str]]:
    """(stack → outputs from its state object, why none could be read, webhooks added by
    developers): whatever can be read; an unreachable or never-deployed environment is no error."""
    from botocore.exceptions import BotoCoreError, ClientError

    endpoint, note = state_endpoint(cfg, env_name)
    if endpoint is None:
        return {}, note, []
    target = Target(cfg, env_name, endpoint)
    try:
        s3 = endpoint.client("s3")
        found = {s: state_outputs(s3, target.state_bucket, env_name, s) for s in names}
        bucket = (found.get("shared") or {}).get("artifact_bucket")
        added = target.store(bucket).added_webhooks() if bucket and livekit_keys.ROLE in target.env.roles else []
    except (BotoCoreError, ClientError, DamsoError) as exc:
        reason = explain(exc) if not isinstance(exc, DamsoError) else exc
        return {}, f"the state could not be read: {reason.message if reason else exc}", []
    return found, "", added


# ---- images ---------------------------------------------------------------------------


def images(cfg: Config, services: Sequence[str], build_manifest: Path | None) -> tuple[dict[str, str], list[str], Path | None]:
    """(service → image, services not built, the manifest read). A manifest named with
    --build-manifest must exist; the latest one may not (nothing built yet)."""
    path = request.manifest_path(cfg, build_manifest)
    bm = manifests.load(path) if build_manifest or path.is_file() else None
    found, not_built = {}, []
    for name in services:
        rec = bm.images.get(name) if bm else None
        if rec and rec.digest:
            found[name] = rec.pinned
        else:
            found[name] = f"{cfg.registry.image_repo(cfg.services[name].image)}:{NOT_BUILT}"
            not_built.append(name)
    return found, not_built, path if bm else None


# ---- files ----------------------------------------------------------------------------


def host_secrets(env_name: str, cfg: Config, role_name: str) -> list[str]:
    """The names the host writes to secrets.env from SSM: the role's, and the LiveKit server's key pair."""
    env = cfg.environments[env_name]
    names = list(env.roles[role_name].secrets)
    if env.roles[role_name].stack_name(role_name) == livekit_keys.ROLE:
        names += [n for n in livekit_keys.KEY_NAMES if n not in names]
    return names


def secret_source(env_name: str, role: str, name: str) -> str:
    return f"<ssm:{secrets.parameter(env_name, role, name)}>"


def secrets_file(env_name: str, role: str, names: Sequence[str]) -> str:
    head = (f"# Written on the host by the reconcile unit (mode 0600) from SSM: {secrets.prefix(env_name, role)}*\n"
            "# damso render shows where each value comes from, never a value.\n")  # fmt: skip
    return head + render.env_file_text({n: secret_source(env_name, role, n) for n in names})


def secret_files(env_name: str, role_name: str, role) -> list[HostFile]:
    """Each secret file as its SSM source, and the compose override the host writes to mount them."""
    if not role.secret_files:
        return []
    folder = "/var/lib/damso/releases/<release>/secret-files"
    found, services = [], {}
    for name, file in sorted(role.secret_files.items()):
        found.append(HostFile(f"secret-files/{name}", f"<ssm:{secrets.file_parameter(env_name, role_name, name)}> "
                              f"(mode 0600, uid {file.uid}; mounted read-only at {file.path})\n", HOST))  # fmt: skip
        for svc in file.services:
            services.setdefault(svc, {"volumes": []})["volumes"].append(f"{folder}/{name}:{file.path}:ro")
    found.append(HostFile("secret-files.compose.json", json.dumps({"services": services}, indent=2, sort_keys=True) + "\n", HOST))
    return found


def filled(text: str, env_name: str, role: str) -> str:
    """X as the host fills it from X.in, with sources in place of values."""
    return FILLED.sub(lambda m: NODE_IP if m.group(1) == "NODE_IP" else secret_source(env_name, role, m.group(1)), text)


def role_files(cfg: Config, env_name: str, role_name: str, out: Outputs, images: Mapping[str, str],
               webhook_urls: Sequence[str], aws_endpoint: str | None, jenv=None) -> tuple[HostFile, ...]:  # fmt: skip
    role = cfg.environments[env_name].roles[role_name]
    bucket = str(out.values["shared"]["artifact_bucket"])
    jenv = jenv or render.template_env(cfg)
    release = render.render_files(cfg, env_name, role_name, role, images, out.values, bucket, jenv, webhook_urls,
                                  aws_endpoint=aws_endpoint)
    files = [HostFile(name, text, RELEASE) for name, text in release.items()]
    files += [HostFile(name[: -len(render.FILLED_SUFFIX)], filled(text, env_name, role_name), HOST)
              for name, text in release.items() if name.endswith(render.FILLED_SUFFIX)]  # fmt: skip
    files.append(HostFile(render.SECRETS_FILE, secrets_file(env_name, role_name, host_secrets(env_name, cfg, role_name)), HOST))
    files += secret_files(env_name, role_name, role)
    user_data = render.render_user_data(cfg, env_name, role_name, role, bucket, jenv, aws_endpoint=aws_endpoint)
    files.append(HostFile(USER_DATA, user_data, LAUNCH))
    return tuple(files)


def preview(cfg: Config, env_name: str, roles: Sequence[str], *, build_manifest: Path | None = None,
            use_state: bool = True) -> Preview:  # fmt: skip
    """Every file each role's host would get. Reads (never writes) the environment's state when it can."""
    env = cfg.environment(env_name)
    chosen = request.selected_roles(env_name, env, list(roles))
    stacks.check_references(env_name, env)
    names = stacks.stack_names(env_name, env)
    found, note, added = read_state(cfg, env_name, names) if use_state else ({}, "not read (--no-state)", [])
    out = outputs(names, found, note)
    needed = list(dict.fromkeys(s for r in chosen for s in env.roles[r].services))
    pinned, not_built, path = images(cfg, needed, build_manifest)
    aws_endpoint = None
    if env.sandbox:
        server = sandbox.running(cfg.state_dir) if use_state else None
        aws_endpoint = server.endpoint_url if server else "<sandbox.endpoint>"
    hooks = livekit_keys.webhook_urls(env, added)
    jenv = render.template_env(cfg)
    previews = []
    for r in chosen:
        services = env.roles[r].services
        files = role_files(cfg, env_name, r, out, pinned, hooks, aws_endpoint, jenv)
        previews.append(RolePreview(r, files, {s: pinned[s] for s in services}, tuple(s for s in not_built if s in services),
                                    tuple(host_secrets(env_name, cfg, r))))  # fmt: skip
    return Preview(env_name, tuple(previews), out, str(path) if path else None)


# ---- writing --------------------------------------------------------------------------


def write(result: Preview, out: Path) -> list[Path]:
    """Each role's files under out/<role>/. A role folder damso render wrote before is replaced
    (its old files removed first); any other non-empty folder is refused, before anything is written."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder.")
    for r in result.roles:
        folder = out / r.role
        if folder.exists() and (not folder.is_dir() or (any(folder.iterdir()) and not (folder / MARKER).is_file())):
            raise UsageError(f"--out {out}: {folder} holds files damso render did not write; choose another folder.")
    written = []
    for r in result.roles:
        folder = out / r.role
        for old in _previous(folder):
            (folder / old).unlink(missing_ok=True)
        folder.mkdir(parents=True, exist_ok=True)
        for f in r.files:
            (folder / f.name).parent.mkdir(parents=True, exist_ok=True)  # secret-files/NAME
            (folder / f.name).write_text(f.text)
            written.append(folder / f.name)
        (folder / MARKER).write_text(json.dumps({"env": result.env, "files": [f.name for f in r.files]}) + "\n")
    return written


def _previous(folder: Path) -> list[str]:
    try:
        names = json.loads((folder / MARKER).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [n for n in names if isinstance(n, str) and "/" not in n and n not in ("", ".", "..")]


def default_out(cfg: Config, env_name: str) -> Path:
    return cfg.state_dir / "render" / env_name

