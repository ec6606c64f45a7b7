"""GPU dev boxes: the pure parts (config, stack inputs, uptime, prices, warnings)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from damso_ops import config
from damso_ops.hosts import devbox, devbox_status
from damso_ops.hosts import prices
from damso_ops.deploy import stacks
from damso_ops.errors import ConfigError, UsageError
from damso_ops.timing import format_duration

NOW = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)
CONFIG = """
[registry]
host = "127.0.0.1:5000"
namespace = "team"

[repositories]
[services]

[environments.dev]
ssh_cidrs = ["198.51.100.0/24"]

[environments.dev.gpu_dev.alice]

[environments.dev.gpu_dev.bob]
instance_type = "g4dn.xlarge"
ami = "ami-1"
ssh_cidrs = ["203.0.113.7/32"]
key_name = "bob"
start_stopped = false
warn_after_hours = 2.5

[environments.sandbox]
sandbox = true

[environments.sandbox.gpu_dev.alice]

[environments.empty]
"""


@pytest.fixture
def cfg():
    return config.parse(CONFIG, Path("/x/damso.toml"))


def instance(state="running", hours=3.0, instance_type="g5.xlarge"):
    return devbox.Instance("i-1", state, instance_type, "54.1.2.3", "10.0.1.5", NOW - timedelta(hours=hours))


def test_box_defaults_and_overrides(cfg):
    alice, bob = cfg.environments["dev"].gpu_dev["alice"], cfg.environments["dev"].gpu_dev["bob"]
    assert (alice.instance_type, alice.ami, alice.volume_size, alice.user) == ("g5.xlarge", "", 200, "ubuntu")
    assert alice.start_stopped is True and alice.key_name is None and alice.warn_after_hours == 8
    assert (bob.instance_type, bob.key_name, bob.start_stopped, bob.warn_after_hours) == ("g4dn.xlarge", "bob", False, 2.5)
    assert cfg.environments["empty"].gpu_dev == {}


def test_bad_box_settings_name_the_key_path():
    with pytest.raises(ConfigError, match=r"environments\.dev\.gpu_dev\.alice\.volume_size"):
        config.parse(CONFIG.replace("[environments.dev.gpu_dev.alice]", "[environments.dev.gpu_dev.alice]\nvolume_size = 1"), Path("/x/damso.toml"))
    with pytest.raises(ConfigError, match=r"gpu_dev\.alice\.gpus is not a known setting"):
        config.parse(CONFIG.replace("[environments.dev.gpu_dev.alice]", "[environments.dev.gpu_dev.alice]\ngpus = 1"), Path("/x/damso.toml"))


def test_unknown_box_and_env_without_boxes_are_one_sentence(cfg):
    with pytest.raises(UsageError, match=r"^Unknown GPU dev box 'carol' in dev \(boxes: alice, bob\)\.$"):
        devbox.require_box("dev", cfg.environments["dev"], "carol")
    with pytest.raises(UsageError, match=r"Environment 'empty' has no GPU dev boxes"):
        devbox.selected("empty", cfg.environments["empty"], None)
    assert devbox.selected("dev", cfg.environments["dev"], None) == ["alice", "bob"]
    assert devbox.selected("dev", cfg.environments["dev"], "bob") == ["bob"]


def test_sandbox_boxes_need_an_ami(cfg):
    with pytest.raises(ConfigError, match=r"environments\.sandbox\.gpu_dev\.alice\.ami is required"):
        devbox.check_sandbox_amis("sandbox", cfg.environments["sandbox"])
    devbox.check_sandbox_amis("dev", cfg.environments["dev"])  # real AWS: the stack looks the AMI up


def test_stack_inputs_use_the_public_subnet_and_fall_back_to_env_ssh_cidrs(cfg):
    shared = {"vpc_id": "vpc-1", "vpc_cidr": "10.0.0.0/16", "public_subnet_ids": ["subnet-pub-a", "subnet-pub-c"],
              "private_subnet_ids": ["subnet-priv"], "artifact_bucket": "b"}  # fmt: skip
    values = stacks.inputs(cfg, "dev", "gpu-dev", {"shared": shared}, {})
    assert values["subnet_id"] == "subnet-pub-a" and values["vpc_id"] == "vpc-1"
    assert (values["project"], values["env"], values["region"]) == ("damso", "dev", "ap-northeast-2")
    assert values["boxes"]["alice"] == {"instance_type": "g5.xlarge", "ami_id": "", "volume_size": 200,
                                        "ssh_cidrs": ["198.51.100.0/24"], "key_name": None, "start_stopped": True}  # fmt: skip
    assert values["boxes"]["bob"]["ssh_cidrs"] == ["203.0.113.7/32"] and values["boxes"]["bob"]["start_stopped"] is False
    assert "artifact_bucket" not in values and "vpc_cidr" not in values  # not variables of the stack


def test_gpu_dev_is_a_known_stack_after_shared(cfg):
    assert "gpu-dev" in stacks.KNOWN
    assert stacks.layers(["gpu-dev", "shared"]) == [["shared"], ["gpu-dev"]]
    assert {"instance_ids"} <= stacks.declared_outputs("gpu-dev")


def test_prices():
    for t in ("g5.xlarge", "g5.2xlarge", "g4dn.xlarge", "c7i.large", "c7i.xlarge", "t3.small", "t3.medium"):
        assert prices.hourly(t) > 0
    assert prices.hourly("g5.2xlarge") > prices.hourly("g5.xlarge") > prices.hourly("t3.medium")
    assert prices.hourly("p5.48xlarge") is None
    assert devbox_status.format_price(1.244) == "$1.244/h" and devbox_status.format_price(None) == "price unknown"


@pytest.mark.parametrize(
    "seconds,text",
    [(None, "-"), (0, "<1 min"), (59, "<1 min"), (60, "1 min"), (3599, "59 min"), (3600, "1 h 00 min"),
     (9 * 3600 + 5 * 60, "9 h 05 min"), (24 * 3600, "1 d 0 h"), (50 * 3600 + 59, "2 d 2 h")],
)  # fmt: skip
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_uptime_only_while_running():
    assert instance(hours=3).uptime_seconds(NOW) == 3 * 3600
    assert instance(state="stopped").uptime_seconds(NOW) is None
    assert instance(hours=-1).uptime_seconds(NOW) == 0  # clock skew is not negative uptime
    assert devbox.Instance("i-1", "running", "g5.xlarge", None, None, None).uptime_seconds(NOW) is None


def test_cost_and_threshold():
    assert devbox_status.cost_so_far(1.244, 3 * 3600) == 3.73
    assert devbox_status.cost_so_far(None, 3600) is None and devbox_status.cost_so_far(1.0, None) is None
    assert devbox_status.over_threshold(3 * 3600, 2.5) and not devbox_status.over_threshold(3600, 2.5)
    assert devbox_status.over_threshold(0, 0) and not devbox_status.over_threshold(None, 0)


def status(inst, warn=8.0, configured=True):
    return devbox_status.BoxStatus("alice", "dev", "ubuntu", configured, inst, warn if configured else None, now=NOW)


def test_status_of_a_long_running_box_warns_with_the_cost():
    st = status(instance(hours=9), warn=8)
    assert st.login == "ubuntu@54.1.2.3" and st.hourly == prices.hourly("g5.xlarge")
    assert st.warning == (
        "alice has been running for 9 h 00 min (warning after 8 h, about $11.20 so far); "
        "stop it with 'damso dev gpu stop alice --env dev'."
    )
    data = st.to_dict()
    assert data["state"] == "running" and data["uptime_seconds"] == 9 * 3600 and data["cost_so_far_usd"] == 11.2
    assert data["warning"] == st.warning


def test_status_without_warning_stopped_or_not_created():
    assert status(instance(hours=1), warn=8).warning is None
    stopped = status(instance(state="stopped"), warn=0)
    assert stopped.warning is None and stopped.login is None and stopped.uptime is None
    missing = status(None)
    assert missing.state == devbox_status.NOT_CREATED and missing.hourly is None
    assert missing.to_dict()["instance_id"] is None and missing.warning is None


def test_a_box_no_longer_in_config_is_named():
    assert "is not in damso.toml but exists (stopped)" in status(instance(state="stopped"), configured=False).warning


def test_wait_ssh_gives_up_after_the_timeout():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        assert devbox.wait_ssh("127.0.0.1", timeout=0.2, port=port, poll=0.05) is False
        s.listen()
        assert devbox.wait_ssh("127.0.0.1", timeout=1, port=port, poll=0.05) is True
