"""damso livekit: the team's one central LiveKit server. Parse, call hosts.livekit_server, render."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from damso_ops.cli.common import (
    CONVERGE_OPTION,
    JSON_OPTION,
    TIMEOUT_OPTION,
    WAIT_OPTION,
    YES_OPTION,
    check_wait,
    confirm_plans,
    connect,
    events,
    not_empty,
    print_result,
    typed_confirmation,
)  # fmt: skip

app = typer.Typer(
    help="The team's central LiveKit server: up, status, keys, token, webhooks, stop/start, down.\n\n"
    "damso livekit up --env dev · damso livekit keys >> .env · damso livekit status",
    no_args_is_help=True,
)

ENV_OPTION = typer.Option("dev", "--env", "-e", callback=not_empty, help="Environment whose LiveKit server this is.")


def _target(ctx: typer.Context, env: str, json_out: bool = False, converge_local: bool = False):
    from damso_ops.hosts import livekit_server

    livekit_server.require_role(env, ctx.obj.config().environment(env))
    return connect(ctx, env, json_out, converge_local)


def _roll_out(ctx, env, converge_local, wait, timeout, json_out, confirm):
    """The normal deploy sequence for the livekit role only: stack, release, reconcile, health."""
    from damso_ops.deploy import pipeline, request
    from damso_ops.hosts import livekit_server

    check_wait(wait, timeout)
    livekit_server.require_role(env, ctx.obj.config().environment(env))
    req = request.resolve(ctx.obj.config(), env, ["livekit"], None)
    target = _target(ctx, env, json_out, converge_local)
    return target, lambda: pipeline.locked_deploy(target, req, command="livekit", confirm=confirm,
                                                  on_event=events(json_out), wait=wait, timeout=timeout,
                                                  converge_local=converge_local)  # fmt: skip


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
    yes: bool = YES_OPTION,
    wait: bool = WAIT_OPTION,
    timeout: Optional[float] = TIMEOUT_OPTION,
    converge_local: bool = CONVERGE_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    """Create or update the LiveKit server: instance, Elastic IP, ports, DNS, keys, config."""
    _, roll_out = _roll_out(ctx, env, converge_local, wait, timeout, json_out, confirm_plans(yes))
    result = roll_out()
    verb = "is now current" if result.changed else "was already current: nothing changed"
    applied = ", ".join(result.applied) or "none"
    print_result(result.to_dict(), json_out, f"{result.env} livekit: release {result.release} {verb}; stacks applied: {applied}.")


@app.command(epilog="[bold]Examples[/]\n\n  damso livekit status\n\n  damso livekit status --env prod --json")
def status(ctx: typer.Context, env: str = ENV_OPTION, json_out: bool = JSON_OPTION) -> None:
    """Instance state, address, URLs, image versions, uptime, hourly cost, last health report."""
    from damso_ops.console import out, print_json
    from damso_ops.hosts import livekit_server
    from damso_ops.timing import format_duration

    data, instance = livekit_server.status(_target(ctx, env, json_out))
    if json_out:
        print_json(data)
        return
    report = data["report"]
    cost = f"${data['hourly_usd']:.4f}/h" if data["hourly_usd"] is not None else "unknown (not in damso's price table)"
    lines = [
        ("state", f"{data['state']}" + (f" ({instance.id})" if instance else " (run 'damso livekit up')")),
        ("type", f"{data['instance_type']}, {cost}" + ("" if data["state"] == "running" or not instance else " while running")),
        ("address", data["public_ip"] or "-"),
        ("urls", ", ".join(data["urls"]) or "-"),
        ("images", ", ".join(data["images"].values())),
        ("uptime", format_duration(data["uptime_seconds"])),
        ("webhooks", ", ".join(data["webhook_urls"]) or "none"),
        ("health", f"{report.get('status')} on {report.get('release')} at {report.get('time')}" if report else "no report yet"),
    ]
    console = out()
    for name, value in lines:
        console.print(f"{name:9} {value}", markup=False)


KEYS_EPILOG = """\
[bold]Examples[/]\n
  damso livekit keys >> .env               LIVEKIT_URL and LIVEKIT_API_KEY\n
  damso livekit keys --show-secret         also LIVEKIT_API_SECRET\n
  damso livekit keys --format json"""


def _keys(target, env: str) -> tuple[str, str]:
    from damso_ops.deploy import livekit_keys
    from damso_ops.errors import UsageError

    pair = livekit_keys.read_keys(target.aws.client("ssm"), env)
    if not pair:
        raise UsageError(f"{env}'s LiveKit server has no keys yet.", hint=f"Run 'damso livekit up --env {env}'.")
    return pair


@app.command(epilog=KEYS_EPILOG)
def keys(
    ctx: typer.Context,
    env: str = ENV_OPTION,
    fmt: str = typer.Option("env", "--format", help="env (NAME=value lines) or json."),
    show_secret: bool = typer.Option(False, "--show-secret", help="Include LIVEKIT_API_SECRET."),
) -> None:
    """What a developer puts in their .env to use the shared server."""
    import json

    from damso_ops.errors import UsageError
    from damso_ops.hosts import livekit_server

    if fmt not in ("env", "json"):
        raise UsageError(f"--format must be env or json, not {fmt!r}.")
    target = _target(ctx, env, fmt == "json")
    key, secret = _keys(target, env)
    instance = livekit_server.find_instance(target.aws.client("ec2"), target.cfg.project.name, env)
    values = {"LIVEKIT_URL": livekit_server.primary_url(target.env, instance, env), "LIVEKIT_API_KEY": key}
    if show_secret:
        values["LIVEKIT_API_SECRET"] = secret
    # Written as is: asking for the secret is the point (everything else damso prints is redacted).
    text = json.dumps(values, indent=2) + "\n" if fmt == "json" else "".join(f"{k}={v}\n" for k, v in values.items())
    sys.stdout.write(text)


@app.command(epilog="[bold]Examples[/]\n\n  damso livekit token --room demo --identity alice\n\n  damso livekit token --room demo --identity bot --ttl 600")
def token(
    ctx: typer.Context,
    room: str = typer.Option(..., "--room", callback=not_empty, help="Room to join."),
    identity: str = typer.Option(..., "--identity", callback=not_empty, help="Participant identity."),
    ttl: int = typer.Option(3600, "--ttl", min=1, max=30 * 86400, help="Seconds the token is valid."),
    name: Optional[str] = typer.Option(None, "--name", callback=not_empty, help="Display name."),
    env: str = ENV_OPTION,
) -> None:
    """Mint a join token locally with the stored keys, for quick tests."""
    from damso_ops.hosts import livekit_server

    target = _target(ctx, env)
    key, secret = _keys(target, env)
    sys.stdout.write(livekit_server.mint_token(key, secret, room, identity, ttl, name) + "\n")


webhooks = typer.Typer(help="The server's webhook receivers: damso livekit webhooks add|rm|list URL.", no_args_is_help=True)
app.add_typer(webhooks, name="webhooks")

WEBHOOK_EPILOG = """\
[bold]Examples[/]\n
  damso livekit webhooks add https://3.sodam.store/webhook/livekit\n
  damso livekit webhooks rm https://3.sodam.store/webhook/livekit --yes\n
The server picks the list up through its normal reconcile; no instance is replaced."""


def _change_webhooks(ctx, env, add, remove, converge_local, wait, timeout, json_out) -> None:
    from damso_ops.hosts import livekit_server

    def refuse(changed_stacks) -> bool:  # a webhook is configuration, never infrastructure
        return False

    target, roll_out = _roll_out(ctx, env, converge_local, wait, timeout, json_out, refuse)
    hooks, changed, result = livekit_server.change_webhooks(target, add, remove, roll_out)
    text = f"webhooks now: {', '.join(hooks) or 'none'} (release {result.release})" if changed else f"{add} is already a webhook; nothing changed."
    data = {"webhook_urls": hooks, "release": result.release if result else None, "stacks_applied": result.applied if result else []}
    print_result(data, json_out, text)


def webhook_command(name: str, argument_help: str, doc: str, add: bool):
    def command(
        ctx: typer.Context,
        url: str = typer.Argument(..., callback=not_empty, help=argument_help),
        env: str = ENV_OPTION,
        wait: bool = WAIT_OPTION,
        timeout: Optional[float] = TIMEOUT_OPTION,
        converge_local: bool = CONVERGE_OPTION,
        json_out: bool = JSON_OPTION,
    ) -> None:
        if add:  # before the config's environment, AWS or the deploy lock
            from damso_ops.deploy.livekit_keys import check_url

            ctx.obj.json = json_out
            check_url(url)
        _change_webhooks(ctx, env, url if add else None, None if add else url, converge_local, wait, timeout, json_out)

    command.__doc__ = doc
    webhooks.command(name, epilog=WEBHOOK_EPILOG)(command)


webhook_command("add", "https:// URL that receives LiveKit's room events.", "Add a webhook receiver (e.g. your own API's /webhook/livekit).", True)
webhook_command("rm", "A URL added with 'webhooks add'.", "Remove a webhook receiver added with 'webhooks add'.", False)


@webhooks.command("list")
def webhooks_list(ctx: typer.Context, env: str = ENV_OPTION, json_out: bool = JSON_OPTION) -> None:
    """The configured and added webhook receivers."""
    from damso_ops.hosts import livekit_server

    hooks = livekit_server.webhooks(_target(ctx, env, json_out))
    print_result({"webhook_urls": hooks, "release": None, "stacks_applied": []}, json_out, "\n".join(hooks) or "none")


def _power(ctx, env: str, running: bool, json_out: bool) -> None:
    from damso_ops.errors import UsageError
    from damso_ops.hosts import instances, livekit_server

    target = _target(ctx, env, json_out)
    ec2 = target.aws.client("ec2")
    instance = livekit_server.find_instance(ec2, target.cfg.project.name, env)
    if not instance:
        raise UsageError(f"{env} has no LiveKit server.", hint=f"Run 'damso livekit up --env {env}'.")
    wanted = "running" if running else "stopped"
    if instance.state != wanted:
        instances.set_running(ec2, instance, running, events(json_out), delay=1 if target.aws.emulated else 5)
    now = livekit_server.find_instance(ec2, target.cfg.project.name, env)
    data = {"env": env, "instance_id": now.id, "state": now.state, "public_ip": now.public_ip, "changed": instance.state != wanted}
    print_result(data, json_out, f"{env} livekit {now.id}: {now.state}" + (f", {now.public_ip}" if now.public_ip else ""))


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
    from damso_ops.deploy import destroy
    from damso_ops.hosts import livekit_server

    ctx.obj.json = json_out
    livekit_server.require_role(env, ctx.obj.config().environment(env))
    typed_confirmation(env, confirm, f"{env}'s LiveKit server", f"{env}'s LiveKit server for the whole team")
    target = _target(ctx, env, json_out)
    on_event = events(json_out)
    destroyed = destroy.destroy(target, destroy.order(target, ["livekit"]), on_event, command="livekit down")
    text = f"{env}: LiveKit server {'destroyed' if destroyed else 'was not there'}; its keys stay in SSM."
    print_result({"env": env, "destroyed": destroyed}, json_out, text)
