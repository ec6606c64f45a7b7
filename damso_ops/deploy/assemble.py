"""A release assembled from a deploy request and the stacks' outputs: every selected role's
files rendered (with --only, the other roles' files taken from the current release), the
hosts to move, and the AWS grants each role gets beyond damso's own."""

from __future__ import annotations

from damso_ops import secrets
from damso_ops.deploy import livekit_keys, releases, render, stacks
from damso_ops.deploy.outputs import StackOutputs
from damso_ops.deploy.request import DeployRequest
from damso_ops.deploy.store import ReleaseStore
from damso_ops.deploy.target import Target
from damso_ops.errors import UsageError


def release(target: Target, request: DeployRequest, outputs: StackOutputs, store: ReleaseStore) -> releases.Release:
    """Render the selected roles; with --only, the others keep their files from the current release."""
    env = target.env
    jenv = render.template_env(target.cfg)
    hooks = livekit_keys.webhook_urls(env, store.added_webhooks()) if livekit_keys.ROLE in request.roles else []
    files = {
        r: render.render_files(target.cfg, target.env_name, r, env.roles[r], request.images, outputs, store.bucket, jenv, hooks,
                               aws_endpoint=target.aws.endpoint_url)
        for r in request.roles
    }
    image_info = request.image_info()
    others = [r for r in env.roles if r not in request.roles]
    if others:
        current = store.current()
        previous = store.manifest(current["release"]) if current else None
        if not previous:
            raise UsageError(f"--only needs an earlier release of {target.env_name} to take {', '.join(others)} from; "
                             "deploy everything first.")  # fmt: skip
        for r in others:
            if r in previous["roles"]:
                files[r] = store.role_files(current["release"], r, previous["roles"][r])
        image_info = {**previous.get("images", {}), **image_info}
    ssm = target.aws.client("ssm")
    settings = {r: {"health_timeout": env.roles[r].health_timeout,
                    "secrets": secrets.fingerprint(ssm, target.env_name, r)} for r in env.roles}  # fmt: skip
    return releases.make(target.env_name, files, image_info, target.cfg.registry.host, request.build.id, settings)


def permissions(target: Target, request: DeployRequest) -> dict[str, list[str]]:
    """What each role's instance may do in AWS beyond damso's own (roles.<role>.aws)."""
    return {r: target.env.roles[r].aws.lines() for r in request.roles if target.env.roles[r].aws.lines()}


def hosts(target: Target, request: DeployRequest, outputs: StackOutputs) -> dict[str, list[str]]:
    """role → its instance ids (a role with count > 1 has several)."""
    by_stack = stacks.roles_by_stack(target.env)
    return {by_stack[s][0]: outputs.instance_ids(s) for s in request.stacks if s in by_stack}
