"""damso livekit: the team's one central LiveKit server."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from damso_ops.cli.deploy import _confirm_factory, _events, typed_confirmation

app = typer.Typer(
    help="The team's central LiveKit server: up, status, keys, token, webhooks, stop/start, down.\n\n"
    "damso livekit up --env dev · damso livekit keys >> .env · damso livekit status",
    no_args_is_help=True,
)

ENV_OPTION = typer.Option("dev", "--env", "-e", help="Environment whose LiveKit server this is.")
JSON_OPTION = typer.Option(False, "--json", help="Print the result as JSON.")
WAIT_OPTION = typer.Option(True, "--wait/--no-wait", help="Wait until the server reports healthy.")
TIMEOUT_OPTION = typer.Option(None, "--timeout", help="Seconds to wait for health.")
CONVERGE_OPTION = typer.Option(False, "--converge-local", help="Sandbox: run the host's reconcile unit here.")


def _target(ctx: typer.Context, env: str, json_out: bool = False):
    from damso_ops import deploy, livekit

    ctx.obj.json = json_out
    cfg = ctx.obj.config()
    livekit.require_role(env, cfg.environment(env))
    return deploy.connect(cfg, env)


def _converge(target, converge_local: bool) -> None:
    if converge_local and not target.aws.emulated:
        raise typer.BadParameter("--converge-local is only for sandbox environments.")


def _roll_out(ctx, env, yes, converge_local, wait, timeout, json_out, confirm=None):
    """The normal pipeline for the livekit role only: stack, release, reconcile, health."""
    from damso_ops import deploy, lock
    from damso_ops.console import err

    deploy.preflight(ctx.obj.config(), env, ["livekit"], None)
    target = _target(ctx, env, json_out)
    _converge(target, converge_local)
    deploy.check_secrets(target, ["livekit"])
    console = err()
    on_event = _events(console, json_out)
    with lock.for_target(target, "livekit", on_event=on_event):
        return target, deploy.deploy(
            target,
            only=["livekit"],
            confirm=confirm or _confirm_factory(yes, console),
            on_event=on_event,
            wait=wait,
            timeout=timeout,
            converge_local=converge_local,
        )


def _print_rollout(result, json_out: bool, extra: dict | None = None) -> None:
    from damso_ops.console import out, print_json

    if json_out:
        print_json({**result.to_dict(), **(extra or {})})
        return
    verb = "is now current" if result.changed else "was already current: nothing changed"
    applied = ", ".join(result.applied) or "none"
    out().print(f"{result.env} livekit: release {result.release} {verb}; stacks applied: {applied}.", markup=False)


UP_EPILOG = """\
[bold]Examples[/]\n
  damso livekit up                         the dev server: plan, confirm, apply, wait healthy\n
  damso livekit up --env dev --yes         the same without asking (CI)\n
  damso livekit up --env sandbox --yes --converge-local   on the embedded emulator\n
The API key and secret are generated the first time and kept in SSM; re-running changes nothing."""


@app.command(epilog=UP_EPILOG)
def up(
    ctx: typer.Context,
    env: str = ENV_OPTION,
    yes: bool = typer.Option(False, "--yes", "-y", help="Apply without asking."),
    wait: bool = WAIT_OPTION,
    timeout: Optional[float] = TIMEOUT_OPTION,
    converge_local: bool = CONVERGE_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Create or update the LiveKit server: instance, Elastic IP, ports, DNS, keys, config."""
    _, result = _roll_out(ctx, env, yes, converge_local, wait, timeout, json_out)
    _print_rollout(result, json_out)


@app.command(epilog="[bold]Examples[/]\n\n  damso livekit status\n\n  damso livekit status --env prod --json")
def status(ctx: typer.Context, env: str = ENV_OPTION, json_out: bool = JSON_OPTION) -> None:
    """Instance state, address, URLs, image versions, uptime, hourly cost, last health report."""
    from damso_ops import livekit, prices, releases
    from damso_ops.console import out, print_json
    from damso_ops.instances import format_duration

    target = _target(ctx, env, json_out)
    lk = target.env.livekit
    instance = livekit.find_instance(target.aws.client("ec2"), target.cfg.project.name, env)
    report, hooks = None, list(lk.webhook_urls)
    if instance:
        from damso_ops.deploy import artifact_bucket

        s3, bucket = target.aws.client("s3"), artifact_bucket(target)
        report = releases.reports(s3, bucket, env).get(instance.id)
        hooks = livekit.webhook_urls(target.env, livekit.added_webhooks(s3, bucket, env))
    itype = instance.instance_type if instance else target.env.roles["livekit"].instance_type_for("livekit")
    data = {
        "env": env,
        "exists": instance is not None,
        "instance_id": instance.id if instance else None,
        "state": instance.state if instance else "absent",
        "instance_type": itype,
        "public_ip": instance.public_ip if instance else None,
        "private_ip": instance.private_ip if instance else None,
        "urls": livekit.urls(target.env, instance),
        "images": {"livekit": lk.image, **({"caddy": lk.caddy_image} if lk.tls else {})},
        "uptime_seconds": instance.uptime_seconds() if instance else None,
        "hourly_usd": prices.hourly(itype),
        "webhook_urls": hooks,
        "report": {k: report.get(k) for k in ("release", "running", "status", "time", "error") if k in report} if report else None,
    }
    if json_out:
        print_json(data)
        return
    console = out()
    cost = f"${data['hourly_usd']:.4f}/h" if data["hourly_usd"] is not None else "unknown (not in damso's price table)"
    lines = [
        ("state", f"{data['state']}" + (f" ({instance.id})" if instance else " (run 'damso livekit up')")),
        ("type", f"{itype}, {cost}" + ("" if data["state"] == "running" or not instance else " while running")),
        ("address", data["public_ip"] or "-"),
        ("urls", ", ".join(data["urls"]) or "-"),
        ("images", ", ".join(data["images"].values())),
        ("uptime", format_duration(data["uptime_seconds"])),
        ("webhooks", ", ".join(hooks) or "none"),
        ("health", f"{report.get('status')} on {report.get('release')} at {report.get('time')}" if report else "no report yet"),
    ]
    for name, value in lines:
        console.print(f"{name:9} {value}", markup=False)


KEYS_EPILOG = """\
[bold]Examples[/]\n
  damso livekit keys >> .env               LIVEKIT_URL and LIVEKIT_API_KEY\n
  damso livekit keys --show-secret         also LIVEKIT_API_SECRET\n
  damso livekit keys --format json"""


@app.command(epilog=KEYS_EPILOG)
def keys(
    ctx: typer.Context,
    env: str = ENV_OPTION,
    fmt: str = typer.Option("env", "--format", help="env (NAME=value lines) or json."),
    show_secret: bool = typer.Option(False, "--show-secret", help="Include LIVEKIT_API_SECRET."),
) -> None:
    """What a developer puts in their .env to use the shared server."""
    import json

    from damso_ops import livekit
    from damso_ops.errors import UsageError

    if fmt not in ("env", "json"):
        raise UsageError(f"--format must be env or json, not {fmt!r}.")
    target = _target(ctx, env, fmt == "json")
    pair = livekit.read_keys(target.aws.client("ssm"), env)
    if not pair:
        raise UsageError(f"{env}'s LiveKit server has no keys yet.", hint=f"Run 'damso livekit up --env {env}'.")
    instance = livekit.find_instance(target.aws.client("ec2"), target.cfg.project.name, env)
    values = {"LIVEKIT_URL": livekit.primary_url(target.env, instance), "LIVEKIT_API_KEY": pair[0]}
    if show_secret:
        values["LIVEKIT_API_SECRET"] = pair[1]
    # Written as is: asking for the secret is the point (everything else damso prints is redacted).
    text = json.dumps(values, indent=2) + "\n" if fmt == "json" else "".join(f"{k}={v}\n" for k, v in values.items())
    sys.stdout.write(text)


@app.command(epilog="[bold]Examples[/]\n\n  damso livekit token --room demo --identity alice\n\n  damso livekit token --room demo --identity bot --ttl 600")
def token(
    ctx: typer.Context,
    room: str = typer.Option(..., "--room", help="Room to join."),
    identity: str = typer.Option(..., "--identity", help="Participant identity."),
    ttl: int = typer.Option(3600, "--ttl", help="Seconds the token is valid."),
    name: Optional[str] = typer.Option(None, "--name", help="Display name."),
    env: str = ENV_OPTION,
) -> None:
    """Mint a join token locally with the stored keys, for quick tests."""
    from damso_ops import livekit
    from damso_ops.errors import UsageError

    target = _target(ctx, env)
    pair = livekit.read_keys(target.aws.client("ssm"), env)
    if not pair:
        raise UsageError(f"{env}'s LiveKit server has no keys yet.", hint=f"Run 'damso livekit up --env {env}'.")
    sys.stdout.write(livekit.mint_token(pair[0], pair[1], room, identity, ttl, name) + "\n")


webhooks = typer.Typer(help="The server's webhook receivers: damso livekit webhooks add|rm|list URL.", no_args_is_help=True)
app.add_typer(webhooks, name="webhooks")

WEBHOOK_EPILOG = """\
[bold]Examples[/]\n
  damso livekit webhooks add https://3.sodam.store/webhook/livekit\n
  damso livekit webhooks rm https://3.sodam.store/webhook/livekit --yes\n
The server picks the list up through its normal reconcile; no instance is replaced."""


def _change_webhooks(ctx, env, add, remove, converge_local, wait, timeout, json_out) -> None:
    from damso_ops import deploy, livekit
    from damso_ops.errors import DamsoError

    target = _target(ctx, env, json_out)
    _converge(target, converge_local)
    s3, bucket = target.aws.client("s3"), deploy.artifact_bucket(target)
    if not deploy.bucket_exists(target, bucket):
        raise DamsoError(f"{env}'s LiveKit server is not up yet.", hint=f"Run 'damso livekit up --env {env}' first.")
    previous = livekit.added_webhooks(s3, bucket, env)
    hooks, changed = livekit.change_webhooks(s3, bucket, env, target.env, add=add, remove=remove)
    if not changed:
        _print_hooks(hooks, json_out, f"{add} is already a webhook; nothing changed.")
        return

    def refuse(changed_stacks) -> bool:  # a webhook is configuration, never infrastructure
        return False

    try:
        _, result = _roll_out(ctx, env, True, converge_local, wait, timeout, json_out, confirm=refuse)
    except DamsoError as exc:
        s3.put_object(Bucket=bucket, Key=livekit.webhooks_key(env), Body=_json({"urls": previous}))
        raise DamsoError(
            f"The webhook list was not changed: {exc.message}",
            hint=f"If infrastructure changes are pending, run 'damso livekit up --env {env}' first.",
            details=exc.details,
        ) from None
    _print_hooks(hooks, json_out, f"webhooks now: {', '.join(hooks) or 'none'} (release {result.release})", result)


def _json(data) -> bytes:
    import json

    return json.dumps(data, indent=2).encode()


def _print_hooks(hooks, json_out, text, result=None) -> None:
    from damso_ops.console import out, print_json

    if json_out:
        print_json({"webhook_urls": hooks, "release": result.release if result else None,
                    "stacks_applied": result.applied if result else []})  # fmt: skip
    else:
        out().print(text, markup=False)


@webhooks.command("add", epilog=WEBHOOK_EPILOG)
def webhooks_add(
    ctx: typer.Context,
    url: str = typer.Argument(..., help="https:// URL that receives LiveKit's room events."),
    env: str = ENV_OPTION,
    wait: bool = WAIT_OPTION,
    timeout: Optional[float] = TIMEOUT_OPTION,
    converge_local: bool = CONVERGE_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Add a webhook receiver (e.g. your own API's /webhook/livekit)."""
    _change_webhooks(ctx, env, url, None, converge_local, wait, timeout, json_out)


@webhooks.command("rm", epilog=WEBHOOK_EPILOG)
def webhooks_rm(
    ctx: typer.Context,
    url: str = typer.Argument(..., help="A URL added with 'webhooks add'."),
    env: str = ENV_OPTION,
    wait: bool = WAIT_OPTION,
    timeout: Optional[float] = TIMEOUT_OPTION,
    converge_local: bool = CONVERGE_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Remove a webhook receiver added with 'webhooks add'."""
    _change_webhooks(ctx, env, None, url, converge_local, wait, timeout, json_out)


@webhooks.command("list")
def webhooks_list(ctx: typer.Context, env: str = ENV_OPTION, json_out: bool = JSON_OPTION) -> None:
    """The configured and added webhook receivers."""
    from damso_ops import deploy, livekit

    target = _target(ctx, env, json_out)
    bucket = deploy.artifact_bucket(target)
    added = livekit.added_webhooks(target.aws.client("s3"), bucket, env) if deploy.bucket_exists(target, bucket) else []
    hooks = livekit.webhook_urls(target.env, added)
    _print_hooks(hooks, json_out, "\n".join(hooks) or "none")


def _power(ctx, env: str, running: bool, json_out: bool) -> None:
    from damso_ops import instances, livekit
    from damso_ops.console import err, out, print_json
    from damso_ops.errors import UsageError

    target = _target(ctx, env, json_out)
    ec2 = target.aws.client("ec2")
    instance = livekit.find_instance(ec2, target.cfg.project.name, env)
    if not instance:
        raise UsageError(f"{env} has no LiveKit server.", hint=f"Run 'damso livekit up --env {env}'.")
    wanted = "running" if running else "stopped"
    if instance.state != wanted:
        instances.set_running(ec2, instance, running, _events(err(), json_out), delay=1 if target.aws.emulated else 5)
    now = livekit.find_instance(ec2, target.cfg.project.name, env)
    if json_out:
        print_json({"env": env, "instance_id": now.id, "state": now.state, "public_ip": now.public_ip,
                    "changed": instance.state != wanted})  # fmt: skip
    else:
        out().print(f"{env} livekit {now.id}: {now.state}" + (f", {now.public_ip}" if now.public_ip else ""), markup=False)


@app.command()
def stop(ctx: typer.Context, env: str = ENV_OPTION, json_out: bool = JSON_OPTION) -> None:
    """Stop the instance (keeps the Elastic IP, stops paying for compute); waits until stopped."""
    _power(ctx, env, False, json_out)


@app.command()
def start(ctx: typer.Context, env: str = ENV_OPTION, json_out: bool = JSON_OPTION) -> None:
    """Start a stopped instance; waits until running. The address stays the same."""
    _power(ctx, env, True, json_out)


@app.command(epilog="[bold]Examples[/]\n\n  damso livekit down --env dev\n\n  damso livekit down --env dev --confirm dev   (no prompt)")
def down(
    ctx: typer.Context,
    env: str = ENV_OPTION,
    confirm: Optional[str] = typer.Option(None, "--confirm", help="The environment's name, to confirm without a prompt."),
    json_out: bool = JSON_OPTION,
) -> None:
    """Destroy the LiveKit stack (instance, Elastic IP, DNS record). Its keys stay in SSM."""
    from damso_ops import deploy, lock
    from damso_ops.console import err, out, print_json

    target = _target(ctx, env, json_out)
    typed_confirmation(env, confirm, f"{env}'s LiveKit server", f"{env}'s LiveKit server for the whole team")
    on_event = _events(err(), json_out)
    with lock.for_target(target, "livekit down", on_event=on_event, create=False):
        destroyed = deploy.destroy(target, deploy.destroy_order(target, ["livekit"]), on_event=on_event)
    if json_out:
        print_json({"env": env, "destroyed": destroyed})
    else:
        out().print(f"{env}: LiveKit server {'destroyed' if destroyed else 'was not there'}; its keys stay in SSM.", markup=False)
