"""Pure logic of damso livekit: key format, tokens, webhook list, config checks."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import jwt
import pytest

from damso_ops import config, secrets
from damso_ops.deploy import request
from damso_ops.deploy import livekit_keys
from damso_ops.hosts import livekit_server
from damso_ops.errors import ConfigError, DamsoError, UsageError

BASE = """
[registry]
host = "ghcr.io"
namespace = "team"
[repositories.app]
url = "file:///x"
[services.api]
repo = "app"
image = "api"
"""


def test_generated_keys_have_livekits_format_and_pass_the_check():
    key, secret = livekit_keys.generate_keys()
    assert key.startswith("API") and len(key) == 15 and len(secret) == 43
    livekit_keys.check_keys(key, secret)
    assert livekit_keys.generate_keys() != (key, secret)


@pytest.mark.parametrize(
    ("key", "secret", "words"),
    [
        ("APIok", "too-short", "is not a LiveKit API secret"),
        ("API key", "x" * 43, "is not a LiveKit API key"),
        ("APIok", "has: colon and spaces" + "x" * 30, "is not a LiveKit API secret"),
    ],
)
def test_keys_that_livekit_would_refuse_are_one_clear_sentence(key, secret, words):
    with pytest.raises(UsageError, match=words):
        livekit_keys.check_keys(key, secret)


def test_token_is_a_livekit_join_grant_signed_with_the_secret():
    key, secret = livekit_keys.generate_keys()
    now = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
    token = livekit_server.mint_token(key, secret, "demo", "alice", 600, name="Alice", now=now)
    claims = jwt.decode(token, secret, algorithms=["HS256"], options={"verify_exp": False, "verify_nbf": False})
    assert claims == {"iss": key, "sub": "alice", "nbf": int(now.timestamp()), "exp": int(now.timestamp()) + 600,
                      "video": {"room": "demo", "roomJoin": True}, "name": "Alice"}  # fmt: skip
    with pytest.raises(UsageError, match="--ttl"):
        livekit_server.mint_token(key, secret, "demo", "alice", 0)


def test_webhook_list_is_config_then_added_without_duplicates():
    cfg = config.parse(BASE + '[environments.dev.livekit]\nwebhook_urls = ["https://a.test/w"]\n', Path("damso.toml"))
    env = cfg.environments["dev"]
    assert livekit_keys.webhook_urls(env, ["https://b.test/w", "https://a.test/w"]) == ["https://a.test/w", "https://b.test/w"]
    with pytest.raises(UsageError, match="is not an https:// URL"):
        livekit_keys.check_url("http://b.test/w")


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ('image = "livekit/livekit-server:latest"', "environments.dev.livekit.image: 'livekit/livekit-server:latest' must name a version"),
        ('caddy_image = "caddy"', "environments.dev.livekit.caddy_image: 'caddy' must name a version"),
        ('webhook_urls = ["http://1.sodam.store/webhook/livekit"]', "environments.dev.livekit.webhook_urls.0: 'http://1.sodam.store/webhook/livekit' must be an https:// URL"),
        ("udp_port_start = 60000\nudp_port_end = 50000", "udp_port_end must be greater than udp_port_start"),
    ],
)
def test_livekit_config_errors_name_the_key_path(table, words):
    with pytest.raises(ConfigError) as caught:
        config.parse(BASE + f"[environments.dev.livekit]\n{table}\n", Path("damso.toml"))
    assert words in caught.value.message


def test_images_by_digest_are_pinned_and_the_livekit_role_defaults_to_c7i():
    text = BASE + (
        '[environments.dev.livekit]\nimage = "livekit/livekit-server@sha256:' + "a" * 64 + '"\n'
        '[environments.dev.roles.livekit]\nami = "ami-1"\n[environments.dev.roles.api]\nami = "ami-1"\n'
    )
    env = config.parse(text, Path("damso.toml")).environments["dev"]
    assert env.roles["livekit"].instance_type_for("livekit") == "c7i.xlarge"
    assert env.roles["api"].instance_type_for("api") == "t3.small"


def test_tls_needs_a_domain():
    with pytest.raises(ConfigError, match="environments.dev.domain is required by livekit.tls"):
        config.parse(BASE + '[environments.dev.livekit]\ntls = true\n[environments.dev.roles.livekit]\nami = "ami-1"\n', Path("d.toml"))


def test_livekit_keys_listed_as_role_secrets_are_left_to_ensure_keys():
    text = BASE + (
        '[environments.dev.roles.livekit]\nami = "ami-1"\nsecrets = ["LIVEKIT_API_SECRET", "REGISTRY_USERNAME"]\n'
        '[environments.dev.roles.api]\nami = "ami-1"\nsecrets = ["LIVEKIT_API_SECRET"]\n'
    )
    env = config.parse(text, Path("damso.toml")).environments["dev"]
    # the api's copy comes from the LiveKit server's own pair (copy_livekit_keys), not from the user
    assert request.needed_secrets(env, ["livekit", "api"]) == {"livekit": ["REGISTRY_USERNAME"], "api": []}
    alone = config.parse(BASE + '[environments.dev.roles.api]\nami = "ami-1"\nsecrets = ["LIVEKIT_API_SECRET"]\n',
                         Path("damso.toml")).environments["dev"]  # fmt: skip
    assert request.needed_secrets(alone, ["api"]) == {"api": ["LIVEKIT_API_SECRET"]}  # no server here: set it yourself


def test_roles_get_the_livekit_servers_keys_from_ssm_and_typed_keys_are_refused(monkeypatch):
    from moto import mock_aws

    for name, value in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    text = BASE + ('[environments.dev.roles.livekit]\nami = "ami-1"\n'
                   '[environments.dev.roles.api]\nami = "ami-1"\nsecrets = ["LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"]\n')
    env = config.parse(text, Path("damso.toml")).environments["dev"]
    with mock_aws():
        import boto3

        ssm = boto3.client("ssm", region_name="us-east-1")
        with pytest.raises(DamsoError, match="need the LiveKit server's keys, which do not exist yet"):
            request.copy_livekit_keys(ssm, "dev", env, ["api"], dry_run=False)
        assert request.copy_livekit_keys(ssm, "dev", env, ["livekit", "api"], dry_run=True)  # made first by this deploy
        key, secret = livekit_keys.generate_keys()
        secrets.put(ssm, "dev", "livekit", "LIVEKIT_API_KEY", key)
        secrets.put(ssm, "dev", "livekit", "LIVEKIT_API_SECRET", secret)
        assert request.copy_livekit_keys(ssm, "dev", env, ["api"], dry_run=False) == [
            "api/LIVEKIT_API_KEY (from the LiveKit keys)", "api/LIVEKIT_API_SECRET (from the LiveKit keys)"]
        assert ssm.get_parameter(Name="/damso/dev/api/LIVEKIT_API_SECRET", WithDecryption=True)["Parameter"]["Value"] == secret
        assert request.copy_livekit_keys(ssm, "dev", env, ["api"], dry_run=False) == []  # already the same
    with pytest.raises(ConfigError, match="roles.api.env.LIVEKIT_API_KEY: must not be typed here"):
        config.parse(text + 'env = { LIVEKIT_API_KEY = "APIdamsoprod" }\n', Path("damso.toml"))


LIVEKIT_ENV = BASE + '[environments.dev]\ndomain = "sodam.store"\nzone_id = "Z0123456789"\n[environments.dev.roles.livekit]\nami = "ami-1"\n'


@pytest.mark.parametrize(
    ("livekit_toml", "expected"),
    [
        ("tls = true\n", ["wss://livekit.sodam.store"]),  # never ws:// next to it: tokens travel in the URL
        ('tls = true\nsubdomain = "rtc"\nport = 7990\n', ["wss://rtc.sodam.store"]),
        ("tls = false\n", ["ws://livekit.sodam.store:7880", "ws://203.0.113.7:7880"]),
    ],
)
def test_with_tls_clients_get_only_wss(livekit_toml, expected):
    from damso_ops.hosts.instances import Instance

    env = config.parse(LIVEKIT_ENV + "[environments.dev.livekit]\n" + livekit_toml, Path("damso.toml")).environments["dev"]
    instance = Instance("i-1", "running", "c7i.xlarge", "203.0.113.7", "10.0.0.5", None)
    assert livekit_server.urls(env, instance) == expected
    assert livekit_server.primary_url(env, instance) == expected[0]
    assert livekit_server.urls(env, None) == [u for u in expected if "203.0.113.7" not in u]


def test_behind_the_edge_clients_get_the_nlbs_wss_name_only():
    from damso_ops.hosts.instances import Instance

    text = LIVEKIT_ENV.replace('zone_id = "Z0123456789"\n', 'zone_id = "Z0123456789"\nstacks = ["edge"]\n'
                               'certificate_arn = "arn:aws:acm:ap-northeast-2:123456789012:certificate/0a1b2c3d-4e5f-6789-abcd-ef0123456789"\n')
    text += '[environments.dev.roles.api]\nami = "ami-1"\n[environments.dev.roles.web]\nami = "ami-1"\n'
    env = config.parse(text, Path("damso.toml")).environments["dev"]
    instance = Instance("i-1", "running", "c7i.xlarge", "203.0.113.7", "10.0.0.5", None)
    assert livekit_server.urls(env, instance, "dev") == ["wss://dev-livekit.sodam.store"]  # 7880 is open to the VPC only
