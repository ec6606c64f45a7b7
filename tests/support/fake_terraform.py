"""A recording stand-in for damso_ops.runner.run over Terraform commands, for unit tests of
the deploy and plan pipeline (patch it in as damso_ops.deploy.stackops.run).

It keeps a small model of each stack, enough for the pipeline to behave as against real
Terraform: the resources the stack's code declares (`wanted`), those applied so far
(`resources`), resources marked as drifted (`touch`), and the outputs an apply leaves in the
stack's state (on_state). Every command is recorded in order, and
`log` holds one line per command ("plan api") plus whatever the test adds (a confirm).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from damso_ops.errors import CommandError
from damso_ops.runner import Command, Result

# The exact argv damso runs for each Terraform verb (cwd is the stack's working copy).
ARGV = {
    "init": ("terraform", "init", "-input=false", "-no-color", "-reconfigure", "-backend-config=backend.hcl"),
    "plan": ("terraform", "plan", "-input=false", "-no-color", "-json", "-out=damso.tfplan", "-detailed-exitcode", "-lock-timeout=120s"),
    # inside damso's own environment lock (a deploy), plans take no Terraform lock
    "unlocked-plan": ("terraform", "plan", "-input=false", "-no-color", "-json", "-out=damso.tfplan", "-detailed-exitcode", "-lock=false"),
    "apply": ("terraform", "apply", "-input=false", "-no-color", "-lock-timeout=120s", "damso.tfplan"),
    # a stack with no state yet, its changes approved ahead (--yes): planned and applied in one run
    "approved-apply": ("terraform", "apply", "-input=false", "-no-color", "-json", "-auto-approve", "-lock-timeout=120s"),
    # a confirmed destroy: planned and destroyed in one run
    "approved-destroy": ("terraform", "apply", "-input=false", "-no-color", "-json", "-auto-approve", "-lock-timeout=120s",
                         "-destroy"),
}


class FakeTerraform:
    def __init__(self, wanted: dict[str, list[str]], outputs: dict[str, dict], on_state=None):
        """on_state(stack, outputs or None): what an apply leaves in the S3 backend (None: destroyed)."""
        self.on_state = on_state or (lambda stack, outputs: None)
        self.wanted = {stack: list(addresses) for stack, addresses in wanted.items()}
        self.outputs = outputs
        self.resources: dict[str, set[str]] = {}
        self.drifted: dict[str, set[str]] = {}
        self.plans: dict[str, list[tuple[str, str]]] = {}  # stack → the changes of its last plan file
        self.commands: list[Command] = []
        self.log: list[str] = []
        self._lock = threading.Lock()

    # ---- what a test arranges ----

    def apply_all(self) -> None:
        """Every stack as if applied earlier (by another deploy)."""
        self.resources = {stack: set(addresses) for stack, addresses in self.wanted.items()}
        for stack in self.wanted:
            self.on_state(stack, self.outputs.get(stack, {}))

    def touch(self, stack: str, address: str) -> None:
        """The next plan of `stack` shows `address` to update."""
        self.drifted.setdefault(stack, set()).add(address)

    def note(self, line: str) -> None:
        with self._lock:
            self.log.append(line)

    # ---- what a test reads ----

    def verbs(self, verb: str) -> list[str]:
        """The stacks `verb` ran in, in order ("apply" counts approved applies and destroys too)."""
        return [line.split(" ", 1)[1] for line in self.log if line.startswith(verb + " ")]

    def check_argv(self) -> None:
        """Every recorded command is exactly the argv damso should run, in a stack's folder."""
        for command in self.commands:
            verb = command.argv[1]
            if verb == "plan" and "-lock=false" in command.argv:
                verb = "unlocked-plan"
            elif verb == "apply" and "-auto-approve" in command.argv:
                verb = "approved-destroy" if "-destroy" in command.argv else "approved-apply"
            assert command.argv == ARGV[verb], command.argv
            assert command.cwd.parent.name == "stacks" and command.cwd.name in self.wanted, command.cwd
            assert command.env["TF_IN_AUTOMATION"] == "1" and command.env["TF_INPUT"] == "0"

    # ---- the runner ----

    def __call__(self, command: Command, *, check=True, on_line=None, timeout=None, ok_codes=(0,)) -> Result:
        assert command.argv[0] == "terraform", command.argv
        verb, folder = command.argv[1], Path(command.cwd)
        stack = folder.name
        with self._lock:
            self.commands.append(command)
            self.log.append(f"{verb} {stack}")
            code, output = getattr(self, f"_{verb}")(folder, stack, command.argv)
        if check and code not in ok_codes:
            raise CommandError(command.text(), code, output)
        return Result(command, code, output)

    def _init(self, folder: Path, stack: str, argv) -> tuple[int, str]:
        (folder / ".terraform").mkdir(exist_ok=True)
        return 0, "Terraform has been successfully initialized!"

    def _plan(self, folder: Path, stack: str, argv) -> tuple[int, str]:
        have, want = self.resources.get(stack, set()), set(self.wanted[stack])
        if "-destroy" in argv:
            changes = [("delete", a) for a in sorted(have)]
        else:
            changes = [("create", a) for a in sorted(want - have)] + [("delete", a) for a in sorted(have - want)]
            changes += [("update", a) for a in sorted(self.drifted.get(stack, set()) & have)]
        self.plans[stack] = changes
        events = [{"type": "version", "@message": "Terraform 1.11.4"}]
        events += [{"type": "planned_change", "@message": f"{a}: Plan to {action}",
                    "change": {"resource": {"addr": a}, "action": action}} for action, a in changes]  # fmt: skip
        events.append({"type": "change_summary", "@message": f"Plan: {len(changes)} changes."})
        return (2 if changes else 0), "\n".join(json.dumps(e) for e in events)

    def _apply(self, folder: Path, stack: str, argv) -> tuple[int, str]:
        if "-auto-approve" in argv:  # no plan file: plan, then apply it, in one run
            _, planned = self._plan(folder, stack, argv)
            self._apply(folder, stack, ())
            return 0, planned
        have = self.resources.setdefault(stack, set())
        for action, address in self.plans.pop(stack):  # KeyError: apply without a plan file
            if action == "delete":
                have.discard(address)
            else:
                have.add(address)
            self.drifted.get(stack, set()).discard(address)
        self.on_state(stack, self.outputs.get(stack, {}) if have else None)
        return 0, "Apply complete!"
