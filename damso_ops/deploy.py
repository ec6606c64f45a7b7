"""damso deploy ENV: pin images, ensure secrets, apply stacks, release, converge, wait healthy.

Library code: progress goes through on_event, confirmation through confirm().
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from damso_ops import manifest as manifests
from damso_ops import livekit, releases, render, secrets, stacks, terraform, workspace
from damso_ops.aws import AwsTarget
from damso_ops.config import Config, Environment
from damso_ops.errors import DamsoError, UsageError
from damso_ops.runner import Command, run

Event = Callable[[str, str], None]  # (phase, message)
Confirm = Callable[[list[terraform.PlanSummary]], bool]


@dataclass(frozen=True)
class Target:
    """Everything a deploy talks to, made at the edge (CLI) and passed in."""

    cfg: Config
    env_name: str
    aws: AwsTarget

    @property
    def env(self) -> Environment:
        return self.cfg.environments[self.env_name]

    @property
    def state_dir(self) -> Path:
        return self.cfg.state_dir


def connect(cfg: Config, env_name: str) -> Target:
    env = cfg.environment(env_name)
    if env.sandbox:
        from damso_ops import sandbox

        server = sandbox.ensure(cfg.state_dir)
        return Target(cfg, env_name, AwsTarget(env.region, server.endpoint_url))
    return Target(cfg, env_name, AwsTarget(env.region))


def preflight(cfg: Config, env_name: str, only: list[str] | None, build_manifest: Path | None) -> None:
    """Everything that can be checked before touching AWS: bad input changes nothing."""
    import shutil

    offline = Target(cfg, env_name, AwsTarget(cfg.environment(env_name).region))
    roles = selected_roles(offline, only or [])
    load_images(offline, build_manifest, roles)
    stacks.check_references(env_name, offline.env)
    if not shutil.which("terraform"):
        raise DamsoError("terraform is not on the PATH.", hint="Install Terraform 1.6 or newer, then run 'damso doctor'.")


def check_secrets(t: Target, only: list[str] | None) -> None:
    """Every secret the roles need is in SSM or can be seeded, and LiveKit keys are well formed;
    checked before the deploy lock (and its state bucket) is made, so bad input changes nothing."""
    roles = selected_roles(t, only or [])
    ssm = t.aws.client("ssm")
    if livekit.ROLE in roles:
        livekit.ensure_keys(ssm, t.env_name, t.state_dir, os.environ, dry_run=True)
    secrets.ensure(ssm, t.env_name, needed_secrets(t, roles), t.state_dir, dry_run=True)


def needed_secrets(t: Target, roles: list[str]) -> dict[str, list[str]]:
    """Role → secret names to find in SSM; LiveKit's key pair is ensure_keys' business."""
    return {r: [n for n in t.env.roles[r].secrets if r != livekit.ROLE or n not in livekit.KEY_NAMES] for r in roles}


@dataclass
class DeployResult:
    env: str
    release: str
    changed: bool  # a new release was made current
    plans: list[terraform.PlanSummary] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    uploaded: int = 0
    instances: dict[str, dict] = field(default_factory=dict)  # instance id → its report
    pending: list[str] = field(default_factory=list)  # plan only: stacks waiting for others
    diffs: dict[str, str] = field(default_factory=dict)  # plan only: role/file → unified diff

    @property
    def healthy(self) -> bool:
        return releases.all_healthy(self.instances, self.release)

    def to_dict(self) -> dict:
        return {
            "env": self.env,
            "release": self.release,
            "changed": self.changed,
            "stacks": {p.stack: {"changes": p.counts(), "applied": p.stack in self.applied} for p in self.plans},
            "uploaded": self.uploaded,
            "healthy": self.healthy,
            "instances": self.instances,
            "pending": self.pending,
            "diffs": self.diffs,
        }


# ---- state bucket and terraform ---------------------------------------------------


def state_bucket(t: Target) -> str:
    if t.env.state_bucket:
        return t.env.state_bucket
    account = t.aws.client("sts").get_caller_identity()["Account"]
    return f"{t.cfg.project.name}-{t.env_name}-tfstate-{account}"


def artifact_bucket(t: Target) -> str:
    """The release bucket the shared stack makes (see terraform/stacks/shared)."""
    account = t.aws.client("sts").get_caller_identity()["Account"]
    return f"{t.cfg.project.name}-{t.env_name}-artifacts-{account}"


def bucket_exists(t: Target, name: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        t.aws.client("s3").head_bucket(Bucket=name)
        return True
    except ClientError:
        return False


def ensure_state_bucket(t: Target, name: str) -> bool:
    """Create the Terraform state bucket (versioned, encrypted, private) if missing."""
    if bucket_exists(t, name):
        return False
    s3 = t.aws.client("s3")
    kwargs = {} if t.aws.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": t.aws.region}}
    s3.create_bucket(Bucket=name, **kwargs)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
    )
    s3.put_public_access_block(
        Bucket=name,
        PublicAccessBlockConfiguration={k: True for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")},
    )
    return True


# Terraform's plugin cache is not safe for concurrent inits (plans and applies are): one
# init at a time in this process, and across processes sharing the cache (a file lock).
_INIT_LOCK = threading.Lock()


@contextlib.contextmanager
def _init_lock(env: dict[str, str]):
    import fcntl

    path = Path(env["TF_PLUGIN_CACHE_DIR"]) / ".damso-init.lock"
    with _INIT_LOCK, open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def plan_stack(ws: workspace.Workspace, stack: str, values: dict, destroy: bool = False) -> terraform.PlanSummary:
    workspace.write_inputs(ws, stack, values)
    folder = ws.stack_dir(stack)
    init(ws, stack)
    result = run(terraform.plan_command(folder, ws.env, destroy=destroy), ok_codes=(0, 2))
    if result.returncode == 0:
        return terraform.PlanSummary(stack, ())
    shown = run(terraform.show_command(folder, ws.env))
    return terraform.summarize(stack, json.loads(shown.output))


def init(ws: workspace.Workspace, stack: str) -> None:
    """terraform init, skipped when the stack's code and backend are as at the last init."""
    folder = ws.stack_dir(stack)
    stamp = folder / ".terraform" / "damso-init.sha256"
    key = workspace.init_key(folder)
    if stamp.is_file() and stamp.read_text() == key:
        return
    with _init_lock(ws.env):
        run(terraform.init_command(folder, ws.env))
    stamp.write_text(key)


def apply_stack(ws: workspace.Workspace, stack: str) -> None:
    run(terraform.apply_command(ws.stack_dir(stack), ws.env))


def stack_outputs(ws: workspace.Workspace, stack: str) -> dict:
    return terraform.outputs_from_json(run(terraform.output_command(ws.stack_dir(stack), ws.env)).output)


def _parallel(fn, items: list, jobs: int) -> list:
    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(items) or 1))) as pool:
        return list(pool.map(fn, items))


# ---- the pipeline -----------------------------------------------------------------


def selected_roles(t: Target, only: list[str]) -> list[str]:
    unknown = [r for r in only if r not in t.env.roles]
    if unknown:
        raise UsageError(
            f"Unknown role {', '.join(repr(r) for r in unknown)} in {t.env_name} "
            f"(roles: {', '.join(sorted(t.env.roles)) or 'none'})."
        )
    return list(only) or list(t.env.roles)


def load_images(t: Target, build_manifest: Path | None, roles: list[str]) -> tuple[manifests.BuildManifest, dict[str, str]]:
    path = build_manifest or manifests.builds_dir(t.state_dir) / "latest.json"
    needed = {s for r in roles for s in t.env.roles[r].services}
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
    return bm, {s: bm.images[s].pinned for s in needed}


def deploy(
    t: Target,
    *,
    only: list[str] | None = None,
    build_manifest: Path | None = None,
    confirm: Confirm,
    on_event: Event,
    jobs: int = 4,
    wait: bool = True,
    timeout: float | None = None,
    converge_local: bool = False,
    plan_only: bool = False,
) -> DeployResult:
    """With plan_only, stop after planning: nothing applied, uploaded or pointed."""
    roles = selected_roles(t, only or [])
    bm, images = load_images(t, build_manifest, roles)
    all_stacks = stacks.stack_names(t.env_name, t.env)
    role_stacks = {t.env.roles[r].stack_name(r) for r in roles}
    chosen = [s for s in all_stacks if not only or s == "shared" or s in role_stacks]

    ssm = t.aws.client("ssm")
    if livekit.ROLE in roles:
        done = livekit.ensure_keys(ssm, t.env_name, t.state_dir, os.environ, dry_run=plan_only)
        if done:
            on_event("secrets", f"{'would store' if plan_only else 'stored'} {done} LiveKit key pair in SSM")
    needed = needed_secrets(t, roles)
    seeded = secrets.ensure(ssm, t.env_name, needed, t.state_dir, dry_run=plan_only)
    if seeded:
        on_event("secrets", f"{'would store' if plan_only else 'stored'} in SSM: {', '.join(seeded)}")

    bucket = state_bucket(t)
    if plan_only and not bucket_exists(t, bucket):
        raise DamsoError(f"{t.env_name} was never deployed (no state bucket {bucket}); nothing to compare with.",
                         hint=f"Run 'damso deploy {t.env_name}'.")
    if ensure_state_bucket(t, bucket):
        on_event("state", f"created state bucket {bucket}")
    ws = workspace.prepare(t.state_dir, t.env_name, t.aws, bucket, chosen)

    result = DeployResult(t.env_name, "", False)
    outputs: dict[str, dict] = {}
    user_data: dict[str, str] = {}
    by_stack = stacks.roles_by_stack(t.env)
    for layer in stacks.layers(chosen):
        if "shared" in outputs:
            artifact_bucket = outputs["shared"]["artifact_bucket"]
            for stack in layer:
                if stack in by_stack:
                    name, role = by_stack[stack]
                    user_data[name] = render.render_user_data(t.cfg, t.env_name, name, role, artifact_bucket)
        on_event("plan", ", ".join(layer))
        for stack in layer:  # init rewrites the shared provider cache: never while a plan of this layer reads it
            init(ws, stack)
        plans = _parallel(
            lambda s: plan_stack(ws, s, stacks.inputs(t.cfg, t.env_name, s, outputs, user_data)), layer, jobs
        )
        result.plans += plans
        changed = [p for p in plans if not p.empty]
        for p in plans:
            on_event("planned", f"{p.stack}: {p.text()}")
        if changed and plan_only:
            result.pending = [s for s in chosen if s not in layer and s not in outputs]
            if result.pending:
                on_event("plan", f"{', '.join(result.pending)} can be planned once {', '.join(p.stack for p in changed)} is applied")
                return result
        elif changed:
            if not confirm(changed):
                raise DamsoError(
                    f"Nothing applied: {', '.join(p.stack for p in changed)} would change and the change was not confirmed.",
                    hint="Pass --yes to apply without asking.",
                )
            on_event("apply", ", ".join(p.stack for p in changed))
            _parallel(lambda p: apply_stack(ws, p.stack), changed, jobs)
            result.applied += [p.stack for p in changed]
        for stack, out in zip(layer, _parallel(lambda s: stack_outputs(ws, s), layer, jobs)):
            outputs[stack] = out

    artifact_bucket = outputs["shared"]["artifact_bucket"]
    s3 = t.aws.client("s3")
    release = make_release(t, roles, images, outputs, artifact_bucket, bm, s3)
    current = releases.current(s3, artifact_bucket, t.env_name)
    result.release = release.id
    if plan_only:
        result.diffs = releases.diff(s3, artifact_bucket, current, release)
        return result
    if current and current.get("content") == release.content:
        result.release = current["release"]
        on_event("release", f"{current['release']} is current and unchanged; nothing uploaded")
    else:
        stats = releases.upload(s3, artifact_bucket, release)
        releases.point(s3, artifact_bucket, release)
        result.changed, result.uploaded = True, stats.put
        on_event("release", f"{release.id} uploaded ({stats.put} objects, {stats.skipped} already there) and made current")

    hosts = {by_stack[s][0]: outputs[s]["instance_id"] for s in chosen if s in by_stack}
    if converge_local:
        converge_locally(t, hosts, artifact_bucket, on_event, jobs)
    if wait:
        limit = timeout or max((t.env.roles[r].health_timeout for r in roles), default=0) + 60
        result.instances = wait_healthy(s3, artifact_bucket, t.env_name, result.release, hosts, limit, on_event)
    return result


def make_release(t: Target, roles, images, outputs, bucket, bm, s3) -> releases.Release:
    """Render the selected roles; the others keep their files from the current release."""
    jenv = render.template_env(t.cfg)
    hooks = livekit.webhook_urls(t.env, livekit.added_webhooks(s3, bucket, t.env_name)) if livekit.ROLE in roles else []
    files = {
        r: render.render_files(t.cfg, t.env_name, r, t.env.roles[r], images, outputs, bucket, jenv, hooks) for r in roles
    }
    image_info = {s: _image_info(bm, s) for s in images}
    others = [r for r in t.env.roles if r not in roles]
    if others:
        current = releases.current(s3, bucket, t.env_name)
        if not current:
            raise UsageError(f"--only needs an earlier release of {t.env_name} to take {', '.join(others)} from; deploy everything first.")
        prev = json.loads(s3.get_object(Bucket=bucket, Key=f"{t.env_name}/releases/{current['release']}/manifest.json")["Body"].read())
        for r in others:
            if r in prev["roles"]:
                files[r] = {
                    n: s3.get_object(Bucket=bucket, Key=f"{t.env_name}/releases/{current['release']}/{r}/{n}")["Body"].read().decode()
                    for n in prev["roles"][r]
                }
        image_info = {**prev.get("images", {}), **image_info}
    settings = {r: {"health_timeout": t.env.roles[r].health_timeout} for r in t.env.roles}
    return releases.make(t.env_name, files, image_info, t.cfg.registry.host, bm.id, settings)


def _image_info(bm: manifests.BuildManifest, service: str) -> dict:
    rec = bm.images[service]
    return {"image": rec.pinned, "commit": rec.commit, "ref": rec.ref, "repository": rec.repository}


def reconcile_command(t: Target, role: str, instance: str, bucket: str) -> Command:
    """Run a host's reconcile unit on this machine (the sandbox's instances run nothing)."""
    import sys

    workdir = t.state_dir / "sandbox" / "hosts" / instance
    workdir.mkdir(parents=True, exist_ok=True)
    script = render.reconcile_source()
    path = workdir / "reconcile.py"
    path.write_text(script)
    env = {
        **t.aws.process_env(),
        "DAMSO_ENV": t.env_name,
        "DAMSO_ROLE": role,
        "DAMSO_BUCKET": bucket,
        "DAMSO_INSTANCE_ID": instance,
        "DAMSO_WORKDIR": str(workdir),
        "DAMSO_NODE_IP": "127.0.0.1",  # no instance metadata here
        "DOCKER_CONFIG": str(workdir / "docker"),
    }
    return Command((sys.executable, str(path)), cwd=workdir, env=env)


def converge_locally(t: Target, hosts: dict[str, str], bucket: str, on_event: Event, jobs: int) -> None:
    def one(item):
        role, instance = item
        on_event("converge", f"{role} ({instance}) on the local Docker engine")
        run(reconcile_command(t, role, instance, bucket), check=False)

    _parallel(one, sorted(hosts.items()), jobs)


def wait_healthy(s3, bucket: str, env: str, release: str, hosts: dict[str, str], timeout: float, on_event: Event, poll: float = 2.0) -> dict[str, dict]:
    """Poll the hosts' reports until each runs `release` healthy; raise naming what is not."""
    deadline = time.monotonic() + timeout
    wanted = {instance: role for role, instance in hosts.items()}
    last: dict[str, str] = {}
    while True:
        found = releases.reports(s3, bucket, env)
        state = {i: found.get(i, {}) for i in wanted}
        for instance, report in state.items():
            text = f"{wanted[instance]} ({instance}): {report.get('status', 'no report yet')} {report.get('release', '')}".strip()
            if last.get(instance) != text:
                on_event("health", text)
                last[instance] = text
        final = {i: r for i, r in state.items() if r.get("release") == release}
        if len(final) == len(wanted) and all(r.get("status") == "healthy" for r in final.values()):
            return state
        bad = {i: r for i, r in final.items() if r.get("status") in ("unhealthy", "rejected", "failed")}
        if bad or time.monotonic() > deadline:
            raise DeployUnhealthy(release, state, wanted, timed_out=not bad)
        time.sleep(poll)


class DeployUnhealthy(DamsoError):
    def __init__(self, release: str, reports: dict[str, dict], roles: dict[str, str], timed_out: bool):
        lines = []
        for instance, report in sorted(reports.items()):
            status = report.get("status", "no report")
            if report.get("release") != release:
                status = f"still on {report.get('release') or 'nothing'}"
            lines.append(f"{roles[instance]} ({instance}): {status}{': ' + report['error'] if report.get('error') else ''}")
            for c in report.get("containers", []):
                if not c.get("ok"):
                    lines.append(f"  {c['name']}: {c['state']}, health {c['health']}")
                    lines += [f"    | {line}" for line in c.get("logs", [])[-10:]]
        what = "did not report healthy in time" if timed_out else "is not healthy"
        super().__init__(f"Release {release} {what}.", details="\n".join(lines))
        self.reports = reports


def destroy_order(t: Target, only: list[str] | None) -> list[str]:
    """Stacks to destroy, dependents first."""
    names = stacks.stack_names(t.env_name, t.env)
    if only:
        roles = selected_roles(t, only)
        names = [t.env.roles[r].stack_name(r) for r in roles]
    return [s for layer in reversed(stacks.layers(names)) for s in layer]


def destroy(t: Target, order: list[str], on_event: Event) -> list[str]:
    """Destroy stacks in order (each one's inputs come from the remaining stacks' state)."""
    bucket = state_bucket(t)
    if not bucket_exists(t, bucket):
        raise DamsoError(f"{t.env_name} has no state bucket {bucket}: nothing to destroy.")
    ws = workspace.prepare(t.state_dir, t.env_name, t.aws, bucket, ["shared", *order])
    init(ws, "shared")
    outputs = {"shared": stack_outputs(ws, "shared")}
    destroyed = []
    for stack in order:
        values = stacks.inputs(t.cfg, t.env_name, stack, outputs, _user_data_stub(t))
        summary = plan_stack(ws, stack, values, destroy=True)
        if summary.empty:
            on_event("destroy", f"{stack}: nothing to destroy")
            continue
        on_event("destroy", f"{stack}: {summary.text()}")
        apply_stack(ws, stack)
        destroyed.append(stack)
    return destroyed


def _user_data_stub(t: Target) -> dict[str, str]:
    # A destroy plan does not depend on user data; any string satisfies the variable.
    return {name: "" for name in t.env.roles}
