"""Terraform operations on one stack of a workspace: init (serialised), plan, apply, outputs.
Only deploy/planning.py calls them: it decides which stacks, in what order, under which lock."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone

from filelock import FileLock

from damso_ops.deploy import terraform, workspace
from damso_ops.errors import CommandError
from damso_ops.runner import TAIL_LINES, run

# Terraform's plugin cache is not safe for an init while anything else uses it: an init may
# rewrite the cached provider that another stack's plan is starting ("fork/exec ...: no such
# file"). One init at a time in this process; across processes sharing the cache, inits take
# the cache's lock file exclusively (filelock) and plans, applies and outputs take it shared.
# Without a cache (providers linked from a filesystem mirror: terraform.cli_env) there is
# nothing shared, and no lock: a long apply elsewhere never holds up an init here.
_INIT_LOCK = threading.Lock()


@contextlib.contextmanager
def using_cache(env: Mapping[str, str]) -> Iterator[None]:
    """A shared lock on the plugin cache's lock file: no init rewrites a provider meanwhile.
    For whatever runs terraform with damso's environment (`env`, as terraform.cli_env makes it)."""
    if not env.get("TF_PLUGIN_CACHE_DIR"):
        yield
        return
    with open(_lock_path(env), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def initialising(env: Mapping[str, str]) -> Iterator[None]:
    """The exclusive lock an init takes on the plugin cache (its lock file: the same as using_cache's)."""
    if not env.get("TF_PLUGIN_CACHE_DIR"):
        yield
        return
    with _INIT_LOCK, FileLock(_lock_path(env)):
        yield


def _lock_path(env: Mapping[str, str]) -> str:
    return f"{env['TF_PLUGIN_CACHE_DIR']}/.damso-init.lock"


def init(ws: workspace.Workspace, stack: str) -> None:
    """terraform init, skipped when the stack's code and backend are as at the last init."""
    folder = ws.stack_dir(stack)
    stamp = folder / ".terraform" / "damso-init.sha256"
    key = workspace.init_key(folder)
    if stamp.is_file() and stamp.read_text() == key:
        return
    with initialising(ws.env):
        run(terraform.init_command(folder, ws.env))
    stamp.write_text(key)


def plan(ws: workspace.Workspace, stack: str, values: dict, lock: bool = True) -> terraform.PlanSummary:
    """Write the stack's inputs and plan it; the summary comes from the plan's own -json events.
    lock=False inside damso's environment lock (see terraform.plan_command)."""
    workspace.write_inputs(ws, stack, values)
    folder = ws.stack_dir(stack)
    init(ws, stack)
    command = terraform.plan_command(folder, ws.env, lock=lock)
    with using_cache(ws.env):
        result = run(command, check=False)
    if result.returncode not in (0, 2):
        said = terraform.readable(result.output).splitlines()[-TAIL_LINES:]
        raise CommandError(command.text(), result.returncode, "\n".join(said))
    if result.returncode == 0:
        return terraform.PlanSummary(stack, ())
    return terraform.plan_summary(stack, result.output)


Recover = Callable[[str, datetime], "dict | None"]  # (stack, apply started) → the lock removed, or None


def apply(ws: workspace.Workspace, stack: str, recover: Recover | None = None) -> None:
    """Apply the stack's saved plan. When Terraform cannot take its own lock (a `.tflock`), recover
    (inside damso's environment lock: lock.own_tflock_remover) may remove it if it is a leftover of
    this very apply, whose write's answer was lost; then the plan is applied again, once. Otherwise
    the error names the lock and the command that clears it."""
    _applying(ws, stack, terraform.apply_command(ws.stack_dir(stack), ws.env), recover)


def apply_approved(ws: workspace.Workspace, stack: str, values: dict, recover: Recover | None = None,
                   destroy: bool = False) -> terraform.PlanSummary:  # fmt: skip
    """Write the stack's inputs, then plan and apply (or destroy) it in one run (`terraform apply
    -auto-approve`), for changes approved before they are seen (deploy --yes; a typed destroy
    confirmation): one provider start and one Terraform run fewer than a plan and then its apply,
    about a fifth of the CPU and the time of a small stack's creation. The summary comes from the
    run's own planned_change events; a lock is recovered as in apply()."""
    workspace.write_inputs(ws, stack, values)
    init(ws, stack)
    command = terraform.apply_approved_command(ws.stack_dir(stack), ws.env, destroy=destroy)
    output = _applying(ws, stack, command, recover)
    return terraform.plan_summary(stack, output)


def _applying(ws: workspace.Workspace, stack: str, command, recover: Recover | None) -> str:
    """Run an apply and return its output (see apply() for the lock it may recover); a failure's
    tail as Terraform would have written it for a person, even from a -json run."""

    def attempt() -> str:
        try:
            return run(command).output
        except CommandError as exc:
            said = terraform.readable(exc.output_tail or "")
            if said == (exc.output_tail or ""):
                raise
            raise CommandError(exc.argv_text, exc.returncode, said) from None

    started = datetime.now(timezone.utc)
    with using_cache(ws.env):
        try:
            return attempt()
        except CommandError as exc:
            if not terraform.LOCK_ERROR.search(exc.output_tail or ""):
                raise
            if recover and recover(stack, started):
                return attempt()
            raise terraform.lock_error(stack, ws.stack_dir(stack), exc.output_tail) from None


# A stack whose Terraform code, inputs and state object are exactly as at its last plan without
# changes (or its last apply) has nothing to plan: a deploy skips it, the way `cdk deploy` skips an
# unchanged stack. What that cannot see is a change made outside Terraform (in the console):
# `damso plan` and `damso deploy --refresh` plan every stack. The record is local (next to the
# stack's .terraform): another machine, or a state written by anyone since, plans again.
CLEAN_FILE = "damso-clean.json"


def _fingerprint(ws: workspace.Workspace, stack: str, inputs: str) -> str:
    binary = shutil.which("terraform", path=ws.env.get("PATH")) or ""
    found = os.stat(binary) if binary else None
    digest = hashlib.sha256()
    for part in (workspace.init_key(ws.stack_dir(stack)), inputs, binary,
                 f"{found.st_size}:{found.st_mtime_ns}" if found else ""):  # fmt: skip
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()


def unchanged(ws: workspace.Workspace, stack: str, values: dict, etag: str | None) -> bool:
    """The stack's code, these inputs and its state object (ETag) are as at its last clean plan."""
    try:
        record = json.loads((ws.stack_dir(stack) / ".terraform" / CLEAN_FILE).read_text())
    except (OSError, ValueError):
        return False
    return bool(etag) and record == {"etag": etag, "fingerprint": _fingerprint(ws, stack, workspace.inputs_text(values))}


def remember_clean(ws: workspace.Workspace, stack: str, etag: str | None) -> None:
    """After a plan without changes (etag: the state it was made from) or an apply (the state it left)."""
    folder = ws.stack_dir(stack)
    record = folder / ".terraform" / CLEAN_FILE
    if not etag:
        record.unlink(missing_ok=True)
        return
    record.parent.mkdir(parents=True, exist_ok=True)
    fingerprint = _fingerprint(ws, stack, (folder / terraform.VARS_FILE).read_text())
    record.write_text(json.dumps({"etag": etag, "fingerprint": fingerprint}))
