"""damso status / releases / rollback / unlock: parse options, call damso_ops.operate, render."""

from __future__ import annotations

from typing import Optional

import typer

from damso_ops.cli.common import (
    CONVERGE_OPTION,
    ENV_ARG,
    JSON_OPTION,
    LOCK_TIMEOUT_OPTION,
    TIMEOUT_OPTION,
    WAIT_OPTION,
    DAY,
    ask,
    check_wait,
    connect,
    events,
    finite,
    not_empty,
    print_result,
)  # fmt: skip

STATUS_HELP = "Instances, the release each runs against the current one, container commits and health; exits 1 on any problem."
STATUS_EPILOG = """\
[bold]Examples[/]\n
  damso status prod                         one block per role and instance\n
  damso status prod --json                  for scripts (fields: docs/operate.md)\n
  damso status prod --stale-after 300       reports older than 5 min count as a problem\n
Exit code 0: every instance runs the current release, healthy, recently reported, and no lock is held; 1 otherwise (a CI gate)."""

RELEASES_HELP = "Release history: id, time, who deployed, commit per service, and what changed from the previous one."
RELEASES_EPILOG = """\
[bold]Examples[/]\n
  damso releases prod                       the last 20, newest first\n
  damso releases prod --limit 5 --json\n
  damso releases prod --prune               remove unfinished uploads (no manifest, older than an hour)"""

ROLLBACK_HELP = "Point the environment at an earlier release (no build, no Terraform) and wait until it is healthy."
ROLLBACK_EPILOG = """\
[bold]Examples[/]\n
  damso rollback prod                       back to the release before the current one (asks first)\n
  damso rollback prod --to 20260101T100000Z-1a2b3c4d5e --yes\n
  damso rollback sandbox --yes --converge-local\n
Without a TTY (or with CI set) nothing is changed unless --yes is given."""

UNLOCK_HELP = "Remove an environment's deploy lock left by a killed deploy, rollback or destroy."
UNLOCK_EPILOG = """\
[bold]Examples[/]\n
  damso unlock prod                         shows who holds it, asks, removes it\n
  damso unlock prod --yes                   without asking (needed without a TTY)\n
Only do this when the holder's process is gone: the next deploy also clears Terraform's leftover locks."""


def _ago(seconds) -> str:
    from damso_ops.timing import format_duration

    return "never" if seconds is None else f"{format_duration(seconds)} ago"


def _short(value: str | None, n: int = 12) -> str:
    if not value:
        return "-"
    return value.split(":", 1)[1][:n] if value.startswith("sha256:") else value[:n]


def located(ctx: typer.Context, env: str, json_out: bool, converge_local: bool = False):
    """(deploy.Target, operate.Deployed) of env; --json also shapes error output."""
    from damso_ops.operate.deployed import find_deployed

    target = connect(ctx, env, json_out, converge_local)
    return target, find_deployed(target)


def status(
    ctx: typer.Context,
    env: str = ENV_ARG,
    stale_after: Optional[float] = typer.Option(
        None, "--stale-after", min=1, max=DAY, callback=finite, help="Seconds after which a host's last report counts as stale (default 900; sandbox: not judged)."
    ),
    json_out: bool = JSON_OPTION,
) -> None:
    from damso_ops.console import out, print_json
    from damso_ops.operate import status as operate
    from damso_ops.redact import redact

    target, where = located(ctx, env, json_out)
    if stale_after is None and not target.aws.emulated:
        stale_after = operate.STALE_AFTER  # hosts report every minute; the sandbox's only when converged
    lock_info = None
    if target.bucket_exists(target.state_bucket):
        from damso_ops.deploy import lock

        lock_info = lock.read(target.aws.client("s3"), target.state_bucket, env)
    result = operate.status(target.store(where.artifact_bucket), target.aws.client("ec2"), where, stale_after=stale_after,
                            lock_info=lock_info)  # fmt: skip
    if json_out:
        print_json(result.to_dict())
    else:
        console = out()
        console.print(f"{env}: current release {result.current or 'none'} (created {result.current_created or '?'})", markup=False)
        if result.lock:
            console.print(f"lock: {operate.lock_problem(env, result.lock, result.lock['holder_state'])}", markup=False)
        if result.rollout and result.rollout.get("state") != "done":
            console.print(f"rollout of {result.rollout['release']}: {operate.rollout_text(result.rollout)}", markup=False)
        for i in result.instances:
            if i["instance_id"] is None:
                console.print(f"{i['role']}: not deployed", markup=False)
                continue
            running = i["release_running"] or "nothing"
            tag = "current" if running == i["release_desired"] else "BEHIND"
            rollout = "" if i["rollout"] == "settled" else f", rollout: {i['rollout']}"
            console.print(
                f"{i['role']} {i['instance_id']} {i['state']} private {i['private_ip'] or '-'} public {i['public_ip'] or '-'}: "
                f"{i['health']}, runs {running} ({tag}{rollout}), last report {_ago(i['report_age_seconds'])}",
                markup=False,
            )
            for c in i["containers"]:
                mark = "" if c["in_release"] else "  NOT IN RELEASE"
                console.print(
                    f"  {c['name']}: {c['state']}, health {c['health']}, digest {_short(c['digest'])}, "
                    f"commit {_short(c['commit'])}{' (' + c['ref'] + ')' if c['ref'] else ''}{mark}",
                    markup=False,
                )
                if c.get("diagnosis"):  # why it is not ok, then its last lines (masked on the host, and here)
                    console.print(f"    {redact(c['diagnosis'])}", markup=False, highlight=False)
                for line in c.get("last_logs") or []:
                    console.print(f"    | {redact(line)}", markup=False, highlight=False)
            if i.get("diagnosis") and i["diagnosis"] != i.get("error"):  # a sentence that says more than the error
                console.print(f"  {redact(i['diagnosis'])}", markup=False, highlight=False)
            for p in i["problems"]:
                console.print(f"  ! {p}", markup=False)
        console.print(f"{env}: ok" if result.ok else f"{env}: {len(result.problems)} problem(s)", markup=False)
    if not result.ok:
        raise typer.Exit(1)


def releases(
    ctx: typer.Context,
    env: str = ENV_ARG,
    limit: int = typer.Option(20, "--limit", "-n", min=0, max=10000, help="How many releases to show, newest first (0: all)."),
    prune: bool = typer.Option(False, "--prune", help="First remove unfinished uploads: release prefixes with no manifest, older than an hour."),
    json_out: bool = JSON_OPTION,
) -> None:
    from damso_ops.console import out, print_json
    from damso_ops.deploy import releases as lib
    from damso_ops.operate import history

    target, where = located(ctx, env, json_out)
    store = target.store(where.artifact_bucket)
    pruned = lib.prune(store) if prune else []
    entries = history.history(store, limit=limit)
    if json_out:
        print_json({"env": env, "releases": entries, **({"pruned": pruned} if prune else {})})
        return
    console = out()
    if prune:
        console.print(f"{env}: removed {len(pruned)} unfinished upload(s){': ' + ', '.join(pruned) if pruned else ''}",
                      markup=False)  # fmt: skip
    if not entries:
        console.print(f"{env}: no releases yet", markup=False)
    for e in entries:
        mark = "  <- current" if e["current"] else ""
        outcome = e.get("rollout") or {}
        if outcome.get("state") in ("halted", "rolled_back"):
            back = f", rolled back {', '.join(outcome['rolled_back'])}" if outcome.get("rolled_back") else ""
            mark += f"  [halted at wave {outcome['failed_wave']} ({', '.join(outcome['failed_roles'] or [])}){back}]"
        console.print(f"{e['release']}  {e['created']}  by {e['by']}{mark}", markup=False)
        commits = ", ".join(f"{s}@{_short(i['commit'])}" for s, i in e["images"].items())
        console.print(f"  images: {commits or 'none'}", markup=False)
        ch = e["changes"]
        if ch is None:
            console.print("  first release shown", markup=False)
            continue
        for img in ch["images"]:
            console.print(f"  {img['service']}: {_short(img['from_commit'])} -> {_short(img['to_commit'])}", markup=False)
        for kind in ("changed", "added", "removed"):
            if ch["files"][kind]:
                console.print(f"  files {kind}: {', '.join(ch['files'][kind])}", markup=False)
        if ch["settings"]:
            console.print(f"  settings changed: {', '.join(ch['settings'])}", markup=False)
        if not (ch["images"] or any(ch["files"].values()) or ch["settings"]):
            console.print("  no change in images or files", markup=False)


def rollback(
    ctx: typer.Context,
    env: str = ENV_ARG,
    to: Optional[str] = typer.Option(None, "--to", callback=not_empty, help="Release id (default: the one before the current release)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Roll back without asking."),
    wait: bool = WAIT_OPTION,
    timeout: Optional[float] = TIMEOUT_OPTION,
    converge_local: bool = CONVERGE_OPTION,
    lock_timeout: float = LOCK_TIMEOUT_OPTION,
    json_out: bool = JSON_OPTION,
) -> None:
    import re

    from damso_ops.errors import UsageError
    from damso_ops.operate import rollback as lib

    ctx.obj.json = json_out
    check_wait(wait, timeout)
    if to is not None and not re.fullmatch(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{10}", to):
        raise UsageError(f"--to {to!r} is not a release id (like 20260101T100000Z-1a2b3c4d5e).", hint=f"See 'damso releases {env}'.")
    target, where = located(ctx, env, json_out, converge_local)
    manifest, pointer = lib.rollback_target(target.store(where.artifact_bucket), to)
    current = (pointer or {}).get("release") or "none"
    ask(yes, f"Point {env} at {manifest['release']} (now {current})?", f"Refusing to roll back {env} without confirmation; pass --yes.")
    on_event = events(json_out)
    result = lib.rollback(target, where, to=manifest["release"], wait=wait, timeout=timeout, converge_local=converge_local,
                          lock_timeout=lock_timeout, on_event=on_event)  # fmt: skip
    verb = f"rolled back from {result.previous} to" if result.changed else "already ran"
    health = "; healthy" if result.waited else "; not waited for"
    print_result(result.to_dict(), json_out, f"{env}: {verb} {result.release}{health}.")


def unlock(
    ctx: typer.Context,
    env: str = ENV_ARG,
    yes: bool = typer.Option(False, "--yes", "-y", help="Remove the lock without asking (needed without a TTY)."),
    json_out: bool = JSON_OPTION,
) -> None:
    from damso_ops.deploy import lock

    target = connect(ctx, env, json_out)
    bucket = target.state_bucket
    s3 = target.aws.client("s3")
    info = lock.read(s3, bucket, env) if target.bucket_exists(bucket) else None
    if info is None:
        print_result({"env": env, "was_locked": False, "removed": None}, json_out, f"{env} is not locked.")
        return
    ask(yes, f"{env} is locked: {lock.describe(info)}. Remove the lock?",
        f"Refusing to unlock {env} ({lock.describe(info)}) without confirmation; pass --yes.")  # fmt: skip
    removed = lock.force_release(s3, bucket, env)
    public = {k: v for k, v in (removed or {}).items() if k != "token"}
    print_result({"env": env, "was_locked": True, "removed": public}, json_out, f"{env}: removed the lock ({lock.describe(info)}).")
