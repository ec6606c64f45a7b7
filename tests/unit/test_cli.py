import json
import subprocess
import sys

from typer.testing import CliRunner

from damso_ops.cli import app

runner = CliRunner()


def test_help_lists_commands_and_build_has_examples():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "build" in result.output and "doctor" in result.output
    result = runner.invoke(app, ["build", "--help"])
    assert result.exit_code == 0 and "damso build --ref v3 api web" in result.output


def test_help_does_not_import_heavy_libraries():
    code = "import sys; from damso_ops.cli import app; print(sorted(m for m in ('boto3','docker','git','jinja2','botocore') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_usage_error_does_not_import_the_click_package():
    """typer raises its own vendored click's exceptions; the click package installed beside (for
    moto's server) is caught too once something imported it, and is not imported for nothing."""
    code = ("import sys; from damso_ops.cli import main; sys.argv = ['damso', 'build', '--jobs', '0']\n"
            "try:\n    main()\nexcept SystemExit as exc:\n    print(exc.code, 'click' in sys.modules)")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.split() == ["2", "False"], result.stdout + result.stderr
    assert "Invalid value for '--jobs'" in result.stderr


def test_click_exceptions_cover_the_click_package_once_imported():
    import click.exceptions
    import typer

    from damso_ops.cli import click_exceptions

    caught = click_exceptions()
    assert click.exceptions.ClickException in caught
    assert any(issubclass(typer.BadParameter, c) for c in caught if c is not click.exceptions.ClickException)


def test_missing_config_is_one_sentence_without_traceback(tmp_path):
    result = runner.invoke(app, ["--config", str(tmp_path / "none.toml"), "build", "--ref", "v1"])
    assert result.exit_code == 2
    assert "Config file" in result.output and "does not exist" in result.output
    assert "Traceback" not in result.output


def test_invalid_config_names_key_path(tmp_path):
    path = tmp_path / "damso.toml"
    path.write_text('[registry]\nhost = "registry.test"\nnamespace = "n"\n[repositories]\n[services.x]\nrepo = "r"\nimage = "x"\n')
    result = runner.invoke(app, ["--config", str(path), "build"])
    assert result.exit_code == 2
    assert "services.x.repo: repository 'r' is not defined under [repositories]" in result.output


def test_unknown_service_fails_before_touching_docker(tmp_path):
    path = tmp_path / "damso.toml"
    path.write_text('[registry]\nhost = "registry.test"\nnamespace = "n"\n[repositories.r]\nurl = "u"\n[services.x]\nrepo = "r"\nimage = "x"\n')
    result = runner.invoke(app, ["--config", str(path), "build", "nope", "--json"], env={"DOCKER_HOST": "unix:///nonexistent"})
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"] == "Unknown service 'nope' (known: x)."


def test_verbose_shows_the_traceback(tmp_path):
    result = runner.invoke(app, ["--verbose", "--config", str(tmp_path / "none.toml"), "build"])
    assert result.exit_code == 2
    assert "Traceback" in result.output and "does not exist" in result.output


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("damso ")


def test_no_aws_credentials_is_one_sentence(tmp_path):
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "damso.example.toml"
    env = {"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None, "AWS_SESSION_TOKEN": None, "AWS_PROFILE": None,
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "AWS_CONFIG_FILE": str(tmp_path / "none"),
           "AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL": None}  # fmt: skip
    result = runner.invoke(app, ["--config", str(example), "livekit", "status", "--env", "prod"], env=env)
    assert result.exit_code == 1
    assert "No AWS credentials were found." in result.output and "Traceback" not in result.output


def test_confirm_with_yes_approves_every_change_ahead():
    from damso_ops.cli.common import confirm_plans
    from damso_ops.deploy.planning import approves_all

    assert approves_all(confirm_plans(True)) and not approves_all(confirm_plans(False))
