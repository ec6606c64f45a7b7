"""Render each role's files from templates/ with jinja2 and StrictUndefined.

The project's own templates/ folder (next to damso.toml) wins over the ones
shipped with damso, file by file.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence

from damso_ops import paths
from damso_ops.config import Config, Role
from damso_ops.deploy import container_logs, livekit_keys
from damso_ops.errors import ConfigError, DamsoError

REF = re.compile(r"\$\{([a-z0-9_-]+)\.([a-z0-9_]+)\}")
ENV_FILE = "role.env"
SECRETS_FILE = "secrets.env"
# A release file named X.in is a template the host fills: ${NAME} from the role's SSM
# secrets and ${NODE_IP} from the instance metadata, written as X with mode 0600.
FILLED_SUFFIX = ".in"
# The role's release tasks (argv and image, run by one host before the services switch) and
# its secret files (names, where containers see them, who mounts them; the content is in SSM).
TASKS_FILE = "tasks.json"
SECRET_FILES_FILE = "secret-files.json"


def template_env(cfg: Config):
    import jinja2

    folders = [str(p) for p in (cfg.root / "templates", paths.data_dir("templates")) if p.is_dir()]
    jenv = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folders),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    jenv.filters["image_key"] = image_key
    return jenv


def image_key(image: str) -> str:
    """A short key of an image reference for names (a volume per image): the digest's first 12
    hex digits when pinned, else its tag in lowercase letters, digits and '-'."""
    if "@" in image:
        return image.rsplit("@", 1)[1].split(":", 1)[-1][:12]
    return re.sub(r"[^a-z0-9]+", "-", image.rsplit("/", 1)[-1].lower()).strip("-")


def substitute(value: str, outputs: Mapping[str, Mapping[str, object]], key_path: str) -> str:
    """Replace ${stack.output} with that stack's Terraform output."""

    def one(match: re.Match) -> str:
        stack, name = match.groups()
        if stack not in outputs:
            raise ConfigError(
                f"{key_path} refers to stack '{stack}', which this environment does not apply "
                f"(stacks: {', '.join(sorted(outputs)) or 'none'})."
            )
        if name not in outputs[stack]:
            raise ConfigError(
                f"{key_path} refers to output '{name}' of stack '{stack}', which has no such output "
                f"(outputs: {', '.join(sorted(outputs[stack]))})."
            )
        out = outputs[stack][name]
        return ",".join(map(str, out)) if isinstance(out, list) else str(out)

    return REF.sub(one, value)


def env_file_text(values: Mapping[str, str]) -> str:
    return "".join(f"{k}={v}\n" for k, v in sorted(values.items()))


def _context(cfg: Config, env_name: str, role_name: str, role: Role, bucket: str) -> dict:
    return {
        "env": env_name,
        "role": role_name,
        "env_file": ENV_FILE,
        "secrets_file": SECRETS_FILE,
        "region": cfg.environments[env_name].region,
        "bucket": bucket,
        "stop_grace_period": role.stop_grace_period,
    }


def _render(jenv, name: str, key: str, cfg: Config, context: dict) -> str:
    import jinja2

    try:
        return jenv.get_template(name).render(context)
    except jinja2.TemplateNotFound:
        raise ConfigError(f"{key}: template {name} was not found in {cfg.root / 'templates'} or damso's own.") from None
    except jinja2.UndefinedError as exc:
        raise ConfigError(f"{key}: template {name}: {exc.message}.") from None


def render_user_data(cfg: Config, env_name: str, role_name: str, role: Role, bucket: str, jenv=None,
                     aws_endpoint: str | None = None) -> str:  # fmt: skip
    """The bootstrap that installs the reconcile unit: the same for every release. aws_endpoint:
    where a sandbox's hosts reach the emulator (real hosts use AWS's own endpoints)."""
    context = _context(cfg, env_name, role_name, role, bucket)
    context.update(reconcile_gz=reconcile_gz(), reconcile_py=reconcile_source().rstrip("\n"),  # a project's own bootstrap may embed it as text
                   aws_endpoint=aws_endpoint or "", imds_url=cfg.environments[env_name].host_imds_url)  # fmt: skip
    key = f"environments.{env_name}.roles.{role_name}"
    return _render(jenv or template_env(cfg), "user-data/bootstrap.sh.j2", key, cfg, context)


@functools.lru_cache(maxsize=1)  # damso's own file: parsed once per process, not per role and plan
def reconcile_source() -> str:
    """The host's reconcile script as every host runs it (and the sandbox's local convergence):
    templates/host/reconcile.py without its comments and docstrings (ast: the same code), which
    keeps the user-data that carries it within EC2's 16 KB."""
    import ast

    tree = ast.parse((paths.data_dir("templates") / "host" / "reconcile.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                node.body = node.body[1:] or [ast.Pass()]
    return "#!/usr/bin/env python3\n# damso's templates/host/reconcile.py, without comments and docstrings\n" + ast.unparse(tree) + "\n"


@functools.lru_cache(maxsize=1)
def reconcile_gz() -> str:
    """reconcile_source() gzipped (no timestamp: the same bytes every time) and base64'd, in
    76-column lines, for the user-data."""
    import base64
    import gzip

    return base64.encodebytes(gzip.compress(reconcile_source().encode(), 9, mtime=0)).decode().rstrip("\n")


def render_files(
    cfg: Config,
    env_name: str,
    role_name: str,
    role: Role,
    images: Mapping[str, str],
    outputs: Mapping[str, Mapping[str, object]],
    bucket: str,
    jenv=None,
    webhook_urls: Sequence[str] = (),
    aws_endpoint: str | None = None,
) -> dict[str, str]:
    """The role's release artifacts: compose.yml and its non-secret env file, and for
    the livekit role livekit.yaml.in (plus a Caddyfile with TLS on). aws_endpoint: a
    sandbox's emulator, where its containers' logs go (container_logs.py)."""
    key = f"environments.{env_name}.roles.{role_name}"
    values = {k: substitute(v, outputs, f"{key}.env.{k}") for k, v in role.env.items()}
    missing = [s for s in role.services if s not in images]
    if missing:
        raise DamsoError(
            f"The build manifest has no image for {', '.join(missing)} (needed by {key}.services).",
            hint=f"Run 'damso build {' '.join(missing)}' first.",
        )
    context = _context(cfg, env_name, role_name, role, bucket)
    env = cfg.environments[env_name]
    context.update(images={s: images[s] for s in role.services}, vars=values, livekit=env.livekit,
                   logging=container_logs.compose_logging(cfg, env_name, role_name, aws_endpoint))  # fmt: skip
    jenv = jenv or template_env(cfg)
    name = role.compose_template or f"compose/{role_name}.yml.j2"
    files = {"compose.yml": _render(jenv, name, key, cfg, context), ENV_FILE: env_file_text(values)}
    files.update(_steps(role, images, files["compose.yml"], key))
    if role.stack_name(role_name) == "livekit":
        context.update(webhook_urls=list(webhook_urls), host=livekit_keys.host(env))
        files["livekit.yaml" + FILLED_SUFFIX] = _render(jenv, "livekit/livekit.yaml.j2", key, cfg, context)
        if env.livekit.tls:
            files["Caddyfile"] = _render(jenv, "livekit/Caddyfile.j2", key, cfg, context)
    return files


def _steps(role: Role, images: Mapping[str, str], compose: str, key: str) -> dict[str, str]:
    """tasks.json and secret-files.json, for a role that has tasks or secret files."""
    import json

    files = {}
    if role.tasks:
        tasks = [{"name": t.name, "image": images[t.service] if t.service else t.image, "command": list(t.command),
                  "timeout": t.timeout} for t in role.tasks]  # fmt: skip
        files[TASKS_FILE] = json.dumps(tasks, indent=2) + "\n"
    for name, file in sorted(role.secret_files.items()):
        for svc in file.services:
            if not re.search(rf"^[ ]+{re.escape(svc)}:[ ]*(#.*)?$", compose, re.MULTILINE):
                raise ConfigError(f"{key}.secret_files.{name}.services names {svc!r}, which the role's compose file does not have as a service.")
    if role.secret_files:
        found = [{"name": n, "path": f.path, "services": list(f.services), "uid": f.uid} for n, f in sorted(role.secret_files.items())]
        files[SECRET_FILES_FILE] = json.dumps(found, indent=2) + "\n"
    return files
