"""damso exec: parse options, call damso_ops.operate.remote, render one line a host."""

from __future__ import annotations

from typing import List, Optional

import typer

from damso_ops.cli.common import ENV_ARG, JSON_OPTION, events, not_empty

HELP = "Run a command on a role's hosts (or in one of its containers) through SSM Run Command, without SSH."
EPILOG = """\
[bold]Examples[/]\n
  damso exec prod api -- uptime                       the role's only instance\n
  damso exec prod api --all -- df -h /                every instance of the role\n
  damso exec prod agent --instance i-0abc --service stt -- nvidia-smi\n
  damso exec prod api --service api --json -- env     (secret values masked)\n
One line a host with its exit code after the output; exit code 1 if any host failed.
Each host's whole output is kept in the artifact bucket under ENV/exec/COMMAND-ID/."""


def exec_command(
    ctx: typer.Context,
    env: str = ENV_ARG,
    role: str = typer.Argument(..., callback=not_empty, help="Role, e.g. api."),
    command: List[str] = typer.Argument(None, help="The command and its arguments, after --."),
    instance: Optional[str] = typer.Option(None, "--instance", callback=not_empty, help="Only this instance (id)."),
    every: bool = typer.Option(False, "--all", help="Every instance of the role (needed when it has several)."),
    service: Optional[str] = typer.Option(None, "--service", callback=not_empty, help="Run inside this container of the role (docker compose exec)."),
    timeout: int = typer.Option(600, "--timeout", min=30, max=172800, help="Seconds the command may run on each host."),
    json_out: bool = JSON_OPTION,
) -> None:
    from damso_ops.cli.operate import located
    from damso_ops.console import out, print_json
    from damso_ops.errors import UsageError
    from damso_ops.operate import log_events, remote

    ctx.obj.json = json_out
    roles = ctx.obj.config().environment(env).roles
    if role not in roles:
        raise UsageError(f"Unknown role {role!r} in {env} (roles: {', '.join(sorted(roles)) or 'none'}).")
    if not command:
        raise UsageError(f"Give the command to run after --, e.g. damso exec {env} {role} -- uptime.")
    target, where = located(ctx, env, json_out)
    instances = remote.targets(role, [h["instance_id"] for h in where.hosts.get(role, [])], instance, every)
    log_events.register_secrets(target.aws.client("ssm"), env, role)  # output is masked like logs
    result = remote.run(target.aws.client("ssm"), target.aws.client("s3"), where.artifact_bucket, env, role, instances,
                        list(command), service, timeout, on_event=events(json_out))  # fmt: skip
    if json_out:
        print_json(result.to_dict())
    else:
        console = out()
        for h in result.hosts:
            if len(result.hosts) > 1:
                console.print(f"== {h.instance_id}", markup=False)
            if h.stdout:
                console.print(h.stdout.rstrip("\n"), markup=False, highlight=False, soft_wrap=True)
            if h.stderr:
                console.print(h.stderr.rstrip("\n"), markup=False, highlight=False, soft_wrap=True)
        for h in result.hosts:
            code = "-" if h.exit_code is None else h.exit_code
            console.print(f"{h.instance_id}: exit {code}{'' if h.status == 'Success' else ' (' + h.status + ')'}", markup=False)
    if not result.ok:
        raise typer.Exit(1)
