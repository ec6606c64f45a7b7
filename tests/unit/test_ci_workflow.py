"""The CI workflow in docs/ci/damso.yml only uses damso commands and options that exist,
passes secrets through env only, and pins every third-party action by commit."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer
import yaml

from damso_ops.cli import app
from damso_ops.doctor import PURPOSES

WORKFLOW = Path(__file__).resolve().parents[2] / "docs" / "ci" / "damso.yml"
SHELL_STOPS = {"|", "||", "&&", ";", ">", ">>", "2>", "2>&1", "<"}
USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<action>[^@\s]+)@(?P<ref>\S+)(?P<comment>\s*#.*)?$")


def damso_lines() -> list[str]:
    """Every `damso ...` command line in the workflow's run: steps (continuations joined)."""
    data = yaml.safe_load(WORKFLOW.read_text())
    found = []
    for job in data["jobs"].values():
        for step in job.get("steps", []):
            script = step.get("run", "")
            for line in script.replace("\\\n", " ").splitlines():
                line = line.strip()
                if line.startswith("damso "):
                    found.append(line)
    return found


def words(line: str) -> list[str]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars="|&;<>")
    lexer.whitespace_split = True
    result = []
    for token in lexer:
        if token in SHELL_STOPS or token.startswith((">", "|", "&", ";")):
            break
        result.append(token)
    return result


def is_group(command) -> bool:
    return hasattr(command, "list_commands")  # typer vendors its own click: compare by shape


def options_of(command) -> dict:
    names = {}
    for param in command.params:
        if getattr(param, "param_type_name", "") == "option":
            for name in [*param.opts, *param.secondary_opts]:
                names[name] = param
    names["--help"] = None
    return names


def resolve(argv: list[str]) -> tuple[object, list[str], str]:
    """(the command, its arguments, its full name) for `damso <argv>`."""
    command = typer.main.get_command(app)
    name = "damso"
    rest = list(argv)
    while is_group(command):
        root_opts = options_of(command)
        while rest and rest[0].startswith("-"):
            opt = rest.pop(0)
            assert opt.split("=")[0] in root_opts, f"'{name}' has no option {opt}"
            param = root_opts[opt.split("=")[0]]
            if param is not None and not param.is_flag and "=" not in opt:
                rest.pop(0)
        assert rest, f"'{name}' needs a command"
        sub = command.get_command(command.context_class(command), rest[0])
        assert sub is not None, f"'{name} {rest[0]}' is not a damso command"
        name, command, rest = f"{name} {rest[0]}", sub, rest[1:]
    return command, rest, name


def env_of(argv: list[str]) -> str:
    """The environment a `damso build|deploy` line works on (deploy ENV, build --env ENV)."""
    if argv[1] == "deploy":
        return argv[2]
    return argv[argv.index("--env") + 1]


def test_the_workflow_has_damso_commands_and_the_status_gate():
    lines = damso_lines()
    assert any(line.startswith("damso deploy prod") for line in lines)
    assert "damso status prod" in lines
    data = yaml.safe_load(WORKFLOW.read_text())
    deploy = data["jobs"]["deploy-prod"]
    assert deploy["environment"]["name"] == "prod" and deploy["permissions"]["id-token"] == "write"
    assert any(s.get("uses", "").startswith("aws-actions/configure-aws-credentials") for s in deploy["steps"])


@pytest.mark.parametrize("line", damso_lines())
def test_every_damso_command_and_option_exists(line):
    command, rest, name = resolve(words(line)[1:])
    opts = options_of(command)
    for word in rest:
        if word.startswith("-"):
            assert word.split("=")[0] in opts, f"'{name}' has no option {word} (in: {line})"


def steps() -> list[tuple[str, dict]]:
    data = yaml.safe_load(WORKFLOW.read_text())
    return [(job_name, step) for job_name, job in data["jobs"].items() for step in job.get("steps", [])]


def test_secrets_reach_steps_only_through_env():
    """A `${{ }}` expression in a run: script becomes part of the script (injection, leaks in logs)."""
    for job_name, step in steps():
        script = step.get("run", "")
        assert "${{" not in script, f"{job_name}: step {step.get('name', script)!r} expands an expression in run:"
    data = yaml.safe_load(WORKFLOW.read_text())

    def walk(node, path):
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, [*path, str(key)])
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, [*path, str(i)])
        elif isinstance(node, str) and "secrets." in node:
            assert len(path) >= 2 and path[-2] == "env", f"secret outside an env: map at {'.'.join(path)}: {node}"

    walk(data, [])


def test_third_party_actions_are_pinned_by_commit_with_the_tag_in_a_comment():
    uses = [m for m in map(USES.match, WORKFLOW.read_text().splitlines()) if m]
    assert len(uses) >= 8
    for m in uses:
        if m["action"].startswith("./"):
            continue  # an action in this repository
        assert re.fullmatch(r"[0-9a-f]{40}", m["ref"]), f"{m['action']}@{m['ref']} is not pinned by a full commit SHA"
        assert m["comment"] and re.fullmatch(r"\s*#\s*v\d+\.\d+\.\d+", m["comment"]), (
            f"{m['action']}@{m['ref']} needs its release tag in a comment (# vX.Y.Z)"
        )
    tags = {}
    for m in uses:
        tags.setdefault(m["action"], set()).add((m["ref"], m["comment"].strip()))
    assert all(len(refs) == 1 for refs in tags.values()), f"one pin per action: {tags}"


def test_each_job_checks_what_it_needs_before_its_work():
    data = yaml.safe_load(WORKFLOW.read_text())
    for job_name, purpose in (("build", "build"), ("deploy-prod", "deploy")):
        job_steps = data["jobs"][job_name]["steps"]
        runs = [s.get("run", "") for s in job_steps]
        doctor = next(i for i, r in enumerate(runs) if r.strip().startswith("damso doctor"))
        work = [i for i, r in enumerate(runs) if re.match(r"\s*damso (build|deploy) ", r)]
        # The doctor checks what this job needs, and with --env the environment the job works on.
        argv = words(runs[doctor].strip())
        assert argv[:4] == ["damso", "doctor", "--for", purpose], f"{job_name}: {runs[doctor]!r}"
        assert purpose in PURPOSES
        if argv[4:]:
            assert argv[4] == "--env" and len(argv) == 6, f"{job_name}: {runs[doctor]!r}"
            job_envs = {env_of(words(line)) for i in work for line in runs[i].splitlines() if line.strip().startswith("damso ")}
            assert job_envs == {argv[5]}, f"{job_name}: the doctor checks {argv[5]}, the job works on {job_envs}"
        assert work and all(i > doctor for i in work), f"{job_name}: doctor must run before the job's work"
        # The doctor step sees every secret the job's damso steps use (the build job's doctor
        # once failed because the registry credentials were set only on the next step).
        secret_env = {k for s in job_steps for k, v in (s.get("env") or {}).items() if "secrets." in str(v)}
        assert secret_env <= set(job_steps[doctor].get("env") or {}), f"{job_name}: doctor lacks {secret_env}"
    deploy = data["jobs"]["deploy-prod"]["steps"]
    uses = [s.get("uses", "").split("@")[0] for s in deploy]
    doctor = next(i for i, s in enumerate(deploy) if s.get("run", "").startswith("damso doctor"))
    assert uses.index("hashicorp/setup-terraform") < doctor and uses.index("aws-actions/configure-aws-credentials") < doctor
    setup = deploy[uses.index("hashicorp/setup-terraform")]["with"]
    assert setup["terraform_wrapper"] is False, "the wrapper rewrites terraform's output, which damso parses"
    assert tuple(map(int, data["env"]["TERRAFORM_VERSION"].split(".")[:2])) >= (1, 10), "use_lockfile needs 1.10+"


def test_checkout_keeps_no_credentials():
    for job_name, step in steps():
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step.get("with", {}).get("persist-credentials") is False, job_name


def test_the_checker_catches_a_wrong_option():
    command, _, name = resolve(words("damso status prod --jsn")[1:])
    assert name == "damso status" and "--jsn" not in options_of(command)
    with pytest.raises(AssertionError):
        resolve(["statuss", "prod"])


def test_docs_mirror_the_workflow():
    doc = (WORKFLOW.parents[1] / "ci.md").read_text()
    assert WORKFLOW.read_text().strip() in doc
