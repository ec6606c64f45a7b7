"""damso logs: a role's container logs from CloudWatch Logs (or the hosts' reports). Parse, call
damso_ops.operate.logs, render."""

from __future__ import annotations

from typing import Optional

import typer

from damso_ops.cli.common import ENV_ARG, not_empty
from damso_ops.cli.operate import located

LOGS_HELP = "A role's container logs from CloudWatch Logs, every instance merged in time order; or, without CloudWatch, from the hosts' reports."
LOGS_EPILOG = """\
[bold]Examples[/]\n
  damso logs prod api                       the last 50 lines of each api container (last hour)\n
  damso logs prod api -f                    and then every new line, from every instance\n
  damso logs prod agent stt --since 2h --grep ERROR\n
  damso logs prod api --instance i-0abc --json    one JSON object a line\n
Each line: time, instance, container, message. Known secret values (the role's SSM parameters) are masked.
With logs.cloudwatch = false the lines come from the hosts' last reports (once a minute, 50 a container)."""


def logs(
    ctx: typer.Context,
    env: str = ENV_ARG,
    role: str = typer.Argument(..., callback=not_empty, help="Role, e.g. api."),
    service: Optional[str] = typer.Argument(None, callback=not_empty, help="Container (compose service) name; default: all of the role's."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep showing new lines, of every instance, in time order (Ctrl-C ends)."),
    since: Optional[str] = typer.Option(None, "--since", callback=not_empty, help="From when: 30s, 10m, 2h, 1d ago or an ISO time (default: 1h)."),
    grep: Optional[str] = typer.Option(None, "--grep", callback=not_empty, help="Only lines matching this CloudWatch Logs filter pattern (e.g. ERROR, '\"connection refused\"')."),
    instance: Optional[str] = typer.Option(None, "--instance", callback=not_empty, help="Only this instance of the role (id)."),
    lines: int = typer.Option(50, "--lines", "-n", min=0, max=10000, help="Last lines per container (0: all since --since; reports keep 50)."),
    json_out: bool = typer.Option(False, "--json", help="One JSON object a line."),
) -> None:
    from damso_ops.errors import UsageError

    ctx.obj.json = json_out
    cfg_env = ctx.obj.config().environment(env)
    if role not in cfg_env.roles:  # before AWS: a typo is not a question for the state bucket
        raise UsageError(f"Unknown role {role!r} in {env} (roles: {', '.join(sorted(cfg_env.roles)) or 'none'}).")
    if not cfg_env.logs.cloudwatch and (follow or since or grep):
        used = "--follow" if follow else "--since" if since else "--grep"
        raise UsageError(f"{used} needs CloudWatch Logs, which {env} turns off (environments.{env}.logs.cloudwatch = false); "
                         "without it, logs come from the hosts' last reports.")  # fmt: skip
    import time

    from damso_ops.operate import log_events

    now = time.time()
    start = log_events.parse_since(since, now) if since else log_events.since_default(now)
    target, where = located(ctx, env, json_out)
    ids = [h["instance_id"] for h in where.hosts.get(role, [])]
    if instance and instance not in ids:
        raise UsageError(f"{role} in {env} has no instance {instance!r} (instances: {', '.join(ids) or 'none'}).")
    if cfg_env.logs.cloudwatch:
        from damso_ops.deploy.container_logs import log_group

        reader = log_events.Reader(target.aws.client("logs"), log_group(ctx.obj.config().project.name, env, role),
                                   [instance] if instance else None, service, grep)  # fmt: skip
        exists = reader.exists()
        if exists and (follow or since or grep or reader.sent()):
            log_events.register_secrets(target.aws.client("ssm"), env, role)
            _cloudwatch_logs(reader, role, start, follow, lines, json_out)
            return
        if not exists and (follow or since or grep):
            raise UsageError(f"{role} in {env} has no log group {reader.group} yet; run 'damso deploy {env}' to make it.")
        if exists:  # a compose file without the awslogs `logging` block sends nothing there
            _note(f"{env}: no container of {role} has sent a line to {reader.group} (its compose file has no "
                  "logging block for CloudWatch; see docs/operate.md); showing the lines hosts put in their last reports.")  # fmt: skip
        else:
            _note(f"{env}: no log group {reader.group} yet (run 'damso deploy {env}' to make it); "
                  "showing the lines hosts put in their last reports.")  # fmt: skip
    else:
        _note(f"{env}: CloudWatch Logs is off (environments.{env}.logs.cloudwatch = false); "
              "showing the lines hosts put in their last reports.")  # fmt: skip
    _report_logs(target, where, env, role, service, instance, lines, json_out)


def _note(text: str) -> None:
    from damso_ops.console import err

    err().print(text, markup=False, highlight=False)


def _cloudwatch_logs(reader, role: str, start: int, follow: bool, lines: int, json_out: bool) -> None:
    import json

    from damso_ops.console import out
    from damso_ops.operate import log_events

    found = log_events.follow(reader, start, lines) if follow else log_events.tail(reader.read(start), lines)
    console = out()
    try:
        for line in found:
            if json_out:
                print(json.dumps(line.to_dict(role)), flush=True)
            else:
                console.print(line.text(), markup=False, highlight=False, soft_wrap=True)
    except KeyboardInterrupt:  # the way to end --follow
        return


def _report_logs(target, where, env: str, role: str, service: str | None, instance: str | None, lines: int, json_out: bool) -> None:
    """Today's source without CloudWatch: the last lines each host put in its report."""
    from dataclasses import replace

    from damso_ops.console import out, print_json
    from damso_ops.operate import logs as lib
    from damso_ops.redact import redact

    if instance:
        where = replace(where, hosts={**where.hosts, role: [h for h in where.hosts[role] if h["instance_id"] == instance]})
    found = lib.logs(target.store(where.artifact_bucket), where, role, service, lines)
    if json_out:
        print_json({"env": env, "source": "reports", "containers": found})
        return
    console = out()
    for c in found:
        console.print(f"== {c['role']} {c['instance_id']} {c['container']} (report {c['time']}, release {c['release']})", markup=False)
        for line in c["lines"]:
            console.print(redact(line), markup=False, highlight=False)
