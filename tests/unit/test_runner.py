import sys

import pytest

from damso_ops import redact
from damso_ops.errors import CommandError, DamsoError
from damso_ops.runner import Command, run


@pytest.fixture(autouse=True)
def clean_secrets():
    redact.forget_all()
    yield
    redact.forget_all()


def test_runs_and_streams_lines(tmp_path):
    seen = []
    result = run(Command((sys.executable, "-c", "print('a'); print('b')"), cwd=tmp_path), on_line=seen.append)
    assert result.ok and seen == ["a", "b"] and result.output == "a\nb"


def test_failure_names_the_command_and_masks_secrets():
    redact.register("hunter2-secret")
    cmd = Command((sys.executable, "-c", "import sys; print('pw=hunter2-secret'); sys.exit(3)", "--token=hunter2-secret"))
    with pytest.raises(CommandError) as err:
        run(cmd)
    assert err.value.returncode == 3
    assert "hunter2-secret" not in str(err.value) and "hunter2-secret" not in err.value.output_tail
    assert "--token=********" in err.value.message
    assert "pw=********" in err.value.output_tail


def test_env_is_merged_over_the_process_environment():
    cmd = Command((sys.executable, "-c", "import os; print(os.environ['DAMSO_T'], 'PATH' in os.environ)"), env={"DAMSO_T": "x"})
    assert run(cmd).output == "x True"


def test_missing_program_is_a_clear_error():
    with pytest.raises(DamsoError, match="'no-such-prog-damso' was not found on the PATH"):
        run(Command(("no-such-prog-damso", "x")))


def test_argv_is_stringified_and_frozen(tmp_path):
    cmd = Command(("echo", tmp_path, 3))
    assert cmd.argv == ("echo", str(tmp_path), "3")
    with pytest.raises(AttributeError):
        cmd.argv = ()
