"""Redis transit encryption as a choice in damso.toml (environments.<env>.data.redis_tls): TLS by
default, off only with a reason, no AUTH without TLS, and REDIS_URL from the data stack's redis_url
output (rediss:// or redis://, checked for both modes by terraform/modules/data/tests)."""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.stub import Stubber

from damso_ops import config
from damso_ops.deploy import redis, render, request, stacks
from damso_ops.errors import ConfigError

PROD = """
stacks = ["data"]
[environments.prod.roles.api]
ami = "ami-1"
services = ["api"]
env = { REDIS_URL = "${data.redis_url}" }
"""
SHARED = {"vpc_id": "vpc-1", "vpc_cidr": "10.0.0.0/16", "artifact_bucket": "b", "public_subnet_ids": ["pub"],
          "private_subnet_ids": ["priv"], "data_subnet_ids": ["d1", "d2"]}  # fmt: skip
OFF = '[environments.prod.data]\nredis_tls = false\nredis_tls_off_reason = "the agent at v3 accepts only redis://"\n'


@pytest.fixture
def cfg(make_config):
    """The test project's damso.toml (tests/support/moto_env.py) with prod's data stack and extra TOML."""
    return lambda extra="": make_config(PROD + extra)


def test_tls_is_the_default(cfg):
    data = cfg().environments["prod"].data
    assert data.redis_tls is True and data.redis_tls_off_reason == ""


@pytest.mark.parametrize("reason", ["", 'redis_tls_off_reason = "  "\n'])
def test_tls_off_without_a_reason_is_refused_naming_the_key(cfg, reason):
    with pytest.raises(ConfigError) as err:
        cfg("[environments.prod.data]\nredis_tls = false\n" + reason)
    assert str(err.value).split("damso.toml: ", 1)[1].startswith(
        "environments.prod.data.redis_tls_off_reason is required when redis_tls = false: ")
    assert str(err.value).endswith("(e.g. a client that accepts only redis://).") and err.value.details is None  # one sentence


def test_tls_off_with_a_reason_is_accepted(cfg):
    data = cfg(OFF).environments["prod"].data
    assert data.redis_tls is False and data.redis_tls_off_reason == "the agent at v3 accepts only redis://"


def test_no_auth_token_secret_without_tls(cfg):
    with pytest.raises(ConfigError, match=r"environments\.prod\.roles\.api\.secrets: lists REDIS_AUTH_TOKEN, but "
                                          r"data\.redis_tls = false and ElastiCache allows AUTH only with TLS"):
        cfg(OFF.replace("[environments.prod.data]", 'secrets = ["REDIS_AUTH_TOKEN"]\n[environments.prod.data]'))
    cfg('[environments.prod.roles.web]\nami = "ami-1"\nsecrets = ["REDIS_AUTH_TOKEN"]\n')  # with TLS it is damso's to set


def test_the_data_stack_gets_the_transit_choice(cfg):
    outputs = {"shared": SHARED, "api": {"security_group_id": "sg-a"}}
    on = stacks.inputs(cfg(), "prod", "data", outputs, {})
    off = stacks.inputs(cfg(OFF), "prod", "data", outputs, {})
    assert on["redis_tls"] is True and off["redis_tls"] is False
    assert on["client_security_group_ids"] == off["client_security_group_ids"] == ["sg-a"]  # REDIS_URL makes api a client
    assert {k: v for k, v in on.items() if k != "redis_tls"} == {k: v for k, v in off.items() if k != "redis_tls"}


@pytest.mark.parametrize(("extra", "url"), [("", "rediss://prod-redis.abc.cache.amazonaws.com:6379"),
                                            (OFF, "redis://prod-redis.abc.cache.amazonaws.com:6379")])  # fmt: skip
def test_redis_url_is_a_reference_to_the_data_stack(cfg, extra, url):
    env = cfg(extra).environments["prod"]
    assert "redis_url" in stacks.declared_outputs("data")
    stacks.check_references("prod", env)  # ${data.redis_url} names a stack and an output that exist
    # What the data stack's redis_url output holds in each mode (terraform/modules/data/outputs.tf).
    resolved = render.substitute(env.roles["api"].env["REDIS_URL"], {"data": {"redis_url": url}}, "k")
    assert resolved == url


def test_no_auth_and_no_token_without_tls(aws, cfg):
    env = cfg(OFF).environments["prod"]
    ssm, elasticache = aws.client("ssm"), aws.client("elasticache")
    with Stubber(elasticache) as stub:  # no ElastiCache call at all
        assert redis.ensure_auth(elasticache, ssm, "prod", env, "damso-prod-redis", lambda p, m: None, poll=0) == []
        stub.assert_no_pending_responses()
    assert ssm.get_parameters(Names=["/damso/prod/data/REDIS_AUTH_TOKEN"])["Parameters"] == []
    assert request.needed_secrets(env, ["api"]) == {"api": []}


def test_the_examples_prod_applies_edge_and_data_with_redis_the_agent_can_use(tmp_path):
    """The example's prod has the production topology: edge and data, its Redis without TLS (with
    the reason: the agent at v3 accepts only redis://), REDIS_URL from the data stack's output."""
    path = Path(__file__).resolve().parents[2] / "damso.example.toml"
    prod = config.load(path).environments["prod"]
    assert set(prod.stacks) == {"edge", "data"}
    assert prod.data.redis_tls is False and "redis://" in prod.data.redis_tls_off_reason
    for role in ("api", "agent"):
        assert prod.roles[role].env["REDIS_URL"] == "${data.redis_url}" and "REDIS_URL" not in prod.roles[role].secrets
