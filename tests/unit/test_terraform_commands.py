"""The Terraform adapter: the exact argv of every command builder, and the pure helpers around
them (backend and override files, the CLI config, plan summaries, outputs)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from damso_ops.deploy import terraform
from damso_ops.deploy.outputs import state_outputs
from damso_ops.deploy.store import Layout
from damso_ops.errors import DamsoError

STACK = Path("/ws/stacks/api")
ENV = {"TF_IN_AUTOMATION": "1", "AWS_REGION": "us-east-1"}


def test_init_command_is_exact():
    command = terraform.init_command(STACK, ENV)
    assert command.argv == ("terraform", "init", "-input=false", "-no-color", "-reconfigure", "-backend-config=backend.hcl")
    assert command.cwd == STACK and dict(command.env) == ENV


def test_plan_command_is_exact_and_keeps_the_plan_file():
    command = terraform.plan_command(STACK, ENV)
    assert command.argv == ("terraform", "plan", "-input=false", "-no-color", "-json", "-out=damso.tfplan",
                            "-detailed-exitcode", "-lock-timeout=120s")  # fmt: skip
    assert command.cwd == STACK and dict(command.env) == ENV


def test_approved_apply_plans_and_applies_in_one_run_and_destroy_adds_only_destroy():
    command = terraform.apply_approved_command(STACK, ENV)
    assert command.argv == ("terraform", "apply", "-input=false", "-no-color", "-json", "-auto-approve",
                            "-lock-timeout=120s")  # fmt: skip
    assert command.cwd == STACK and dict(command.env) == ENV
    assert terraform.apply_approved_command(STACK, ENV, destroy=True).argv == (*command.argv, "-destroy")


def test_apply_command_applies_the_saved_plan_last():
    command = terraform.apply_command(STACK, ENV)
    assert command.argv == ("terraform", "apply", "-input=false", "-no-color", "-lock-timeout=120s", "damso.tfplan")
    assert command.cwd == STACK and dict(command.env) == ENV


def test_version_command_is_exact():
    version = terraform.version_command(ENV)
    assert version.argv == ("terraform", "version", "-json")
    assert version.cwd is None and dict(version.env) == ENV


def test_the_file_names_the_commands_and_workspace_share():
    assert (terraform.PLAN_FILE, terraform.BACKEND_FILE) == ("damso.tfplan", "backend.hcl")
    assert (terraform.VARS_FILE, terraform.OVERRIDE_FILE) == ("damso.auto.tfvars.json", "damso_override.tf")


def test_backend_for_aws_is_the_five_settings_only():
    text = terraform.backend_hcl("unit-prod-tfstate-1", "prod/api.tfstate", "us-east-1", None)
    assert text == (
        'bucket = "unit-prod-tfstate-1"\nkey = "prod/api.tfstate"\nregion = "us-east-1"\n'
        "encrypt = true\nuse_lockfile = true\n"
    )


def test_backend_for_the_emulator_adds_path_style_skips_and_the_endpoint():
    lines = terraform.backend_hcl("b", "sandbox/shared.tfstate", "ap-northeast-2", "http://127.0.0.1:4566").splitlines()
    assert lines[:5] == ['bucket = "b"', 'key = "sandbox/shared.tfstate"', 'region = "ap-northeast-2"', "encrypt = true",
                         "use_lockfile = true"]  # fmt: skip
    assert lines[5:] == [
        "use_path_style = true",
        "skip_credentials_validation = true",
        "skip_requesting_account_id = true",
        "skip_metadata_api_check = true",
        "skip_region_validation = true",
        'endpoints = { s3 = "http://127.0.0.1:4566" }',
    ]


def test_override_points_every_emulated_service_at_the_endpoint():
    text = terraform.override_tf("http://127.0.0.1:4566")
    assert text.startswith('provider "aws" {\n') and text.endswith("  }\n}\n")
    endpoints = [line.split() for line in text.splitlines() if line.startswith("    ")]
    assert endpoints == [[s, "=", '"http://127.0.0.1:4566"'] for s in terraform.EMULATED_SERVICES]
    assert list(terraform.EMULATED_SERVICES) == sorted(terraform.EMULATED_SERVICES)
    for setting in ("skip_credentials_validation", "skip_requesting_account_id", "skip_metadata_api_check",
                    "skip_region_validation", "s3_use_path_style"):  # fmt: skip
        assert f"  {setting}" in text and text.count(setting) == 1


def test_cli_config_without_a_mirror_uses_the_registry():
    assert terraform.cli_config_text(None) == "# damso: providers from the public registry\n"


def test_cli_config_with_a_mirror_takes_hashicorp_from_it_and_the_rest_directly():
    assert terraform.cli_config_text(Path("/opt/tf-plugins")) == (
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        '    path    = "/opt/tf-plugins"\n'
        '    include = ["registry.terraform.io/hashicorp/*"]\n'
        "  }\n"
        "  direct {\n"
        '    exclude = ["registry.terraform.io/hashicorp/*"]\n'
        "  }\n"
        "}\n"
    )


def test_find_mirror_takes_the_override_only_when_it_holds_the_aws_provider(tmp_path, monkeypatch):
    monkeypatch.setenv("DAMSO_TF_MIRROR", str(tmp_path))
    assert terraform.find_mirror() is None
    (tmp_path / terraform.PROVIDER).mkdir(parents=True)
    assert terraform.find_mirror() == tmp_path


def test_a_filesystem_mirror_needs_no_plugin_cache_and_inits_take_no_lock(tmp_path, monkeypatch):
    """From an unpacked mirror, init links each stack's provider to the mirror: nothing is shared,
    so an init never waits for another process's plans and applies (they held its lock shared)."""
    import fcntl

    from damso_ops.deploy import stackops

    (tmp_path / "mirror" / terraform.PROVIDER).mkdir(parents=True)
    monkeypatch.setenv("DAMSO_TF_MIRROR", str(tmp_path / "mirror"))
    monkeypatch.delenv("TF_PLUGIN_CACHE_DIR", raising=False)
    env = terraform.cli_env(tmp_path / "home")
    assert "TF_PLUGIN_CACHE_DIR" not in env
    with stackops.using_cache(env), stackops.initialising(env):  # neither waits for the other
        pass
    # From the registry (no mirror), or when the user names a cache: the cache, and its lock.
    monkeypatch.setenv("TF_PLUGIN_CACHE_DIR", str(tmp_path / "plugins"))
    env = terraform.cli_env(tmp_path / "home")
    assert env["TF_PLUGIN_CACHE_DIR"] == str(tmp_path / "plugins")
    with stackops.using_cache(env):
        with open(tmp_path / "plugins" / ".damso-init.lock") as fh:
            with pytest.raises(BlockingIOError):  # an init would wait
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_terraform_runs_with_less_garbage_collection_unless_the_user_chose(tmp_path, monkeypatch):
    monkeypatch.delenv("GOGC", raising=False)
    assert terraform.cli_env(tmp_path / "home")["GOGC"] == "400"
    monkeypatch.setenv("GOGC", "50")  # the user's own GOGC reaches Terraform as it is (Command env merges over it)
    assert "GOGC" not in terraform.cli_env(tmp_path / "home")


def _planned(address: str, action: str) -> str:
    return json.dumps({"@level": "info", "@message": f"{address}: Plan to {action}", "type": "planned_change",
                       "change": {"resource": {"addr": address, "module": ""}, "action": action}})  # fmt: skip


def _plan_output(*events: str) -> str:
    version = json.dumps({"@message": "Terraform 1.11.4", "type": "version", "ui": "1.2"})
    summary = json.dumps({"@message": "Plan: ...", "type": "change_summary", "changes": {"add": 1}})
    return "\n".join([version, *events, summary])


def test_plan_summary_maps_terraforms_planned_changes_and_drops_what_changes_no_object():
    output = _plan_output(
        _planned("module.host.aws_instance.this", "replace"),
        _planned("aws_s3_bucket.a", "create"),
        _planned("data.aws_ami.ubuntu", "read"),
        _planned("aws_iam_role.r", "noop"),
        _planned("aws_iam_role.renamed", "move"),
        _planned("aws_security_group.sg", "update"),
        json.dumps({"type": "resource_drift", "change": {"resource": {"addr": "aws_eip.ip"}, "action": "update"}}),
        _planned("aws_route53_record.old", "delete"),
        "a line that is not JSON",
    )  # fmt: skip
    summary = terraform.plan_summary("api", output)
    assert summary.stack == "api" and not summary.empty
    assert summary.changes == (
        ("replace", "module.host.aws_instance.this"),
        ("create", "aws_s3_bucket.a"),
        ("update", "aws_security_group.sg"),
        ("delete", "aws_route53_record.old"),
    )
    assert summary.counts() == {"create": 1, "update": 1, "replace": 1, "delete": 1}
    assert summary.text() == "1 to create, 1 to update, 1 to replace, 1 to delete"


def test_plan_summary_of_a_plan_without_changes():
    summary = terraform.plan_summary("shared", _plan_output(_planned("aws_vpc.main", "noop")))
    assert summary.empty and summary.changes == ()
    assert summary.counts() == {"create": 0, "update": 0, "replace": 0, "delete": 0}
    assert summary.text() == "no changes"
    assert terraform.PlanSummary("x", ()).text() == "no changes"


def test_a_failed_json_plan_reads_as_terraform_would_have_written_it():
    diagnostic = json.dumps({
        "@level": "error", "@message": "Error: Reference to undeclared input variable", "type": "diagnostic",
        "diagnostic": {"severity": "error", "summary": "Reference to undeclared input variable",
                       "detail": 'An input variable with the name "nope" has not been declared.',
                       "range": {"filename": "main.tf", "start": {"line": 20, "column": 41}}},
    })  # fmt: skip
    text = terraform.readable(_plan_output(diagnostic) + "\nplugin crashed")
    assert text.splitlines() == [
        "Terraform 1.11.4",
        "Error: Reference to undeclared input variable",
        "  on main.tf line 20",
        'An input variable with the name "nope" has not been declared.',
        "Plan: ...",
        "plugin crashed",
    ]


def test_outputs_are_read_from_the_state_and_a_sensitive_one_is_refused_by_name():
    from moto import mock_aws

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="prod-tfstate")
        key = Layout("prod").state("shared")
        outputs = {
            "artifact_bucket": {"type": "string", "value": "b"},
            "private_subnet_ids": {"type": ["list", "string"], "value": ["s1", "s2"]},
        }  # fmt: skip
        s3.put_object(Bucket="prod-tfstate", Key=key, Body=json.dumps({"version": 4, "outputs": outputs, "resources": [{}]}))
        assert state_outputs(s3, "prod-tfstate", "prod", "shared") == {"artifact_bucket": "b", "private_subnet_ids": ["s1", "s2"]}
        assert state_outputs(s3, "prod-tfstate", "prod", "api") is None  # never applied
        outputs["db_password"] = {"sensitive": True, "type": "string", "value": "hunter2"}
        s3.put_object(Bucket="prod-tfstate", Key=key, Body=json.dumps({"version": 4, "outputs": outputs, "resources": [{}]}))
        with pytest.raises(DamsoError) as exc:
            state_outputs(s3, "prod-tfstate", "prod", "shared")
    assert exc.value.message == "Output 'db_password' of the shared stack is sensitive; damso stacks must not output secrets."
    assert "hunter2" not in str(exc.value)
