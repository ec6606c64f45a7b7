"""The CI workflow in docs/ci/damso.yml only uses damso commands and options that exist."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import typer
import yaml

from damso_ops.cli import app

WORKFLOW = Path(__file__).resolve().parents[2] / "docs" / "ci" / "damso.yml"
SHELL_STOPS = {"|", "||", "&&", ";", ">", ">>", "2>", "2>&1", "<"}


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


def test_the_checker_catches_a_wrong_option():
    command, _, name = resolve(words("damso status prod --jsn")[1:])
    assert name == "damso status" and "--jsn" not in options_of(command)
    with pytest.raises(AssertionError):
        resolve(["statuss", "prod"])


def test_docs_mirror_the_workflow():
    doc = (WORKFLOW.parents[1] / "ci.md").read_text()
    assert WORKFLOW.read_text().strip() in doc
