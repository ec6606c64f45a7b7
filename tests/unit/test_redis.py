"""Redis AUTH: the token made once in SSM, AUTH turned on through ElastiCache's API (never through
Terraform), the token copied to the roles that list it. SSM is moto's; ElastiCache's replication
group calls are stubbed with botocore's Stubber, as moto does not model AUTH on replication groups."""

from __future__ import annotations

from botocore.stub import ANY, Stubber

from damso_ops.deploy import redis, request

ROLES = """
stacks = ["data"]
[environments.prod.roles.api]
secrets = ["REDIS_AUTH_TOKEN", "DATABASE_URL"]
[environments.prod.roles.web]
"""


def group(status: str, auth: bool) -> dict:
    return {"ReplicationGroups": [{"ReplicationGroupId": "unit-prod-redis", "Status": status, "AuthTokenEnabled": auth}]}


def test_auth_is_turned_on_once_with_the_token_from_ssm(aws, make_config):
    env = make_config(ROLES).environments["prod"]
    assert request.needed_secrets(env, ["api"]) == {"api": ["DATABASE_URL"]}  # the token is damso's to make
    ssm, elasticache = aws.client("ssm"), aws.client("elasticache")
    events = []
    with Stubber(elasticache) as stub:
        stub.add_response("describe_replication_groups", group("available", False), {"ReplicationGroupId": "unit-prod-redis"})
        stub.add_response("modify_replication_group", {}, {
            "ReplicationGroupId": "unit-prod-redis", "AuthToken": ANY,
            "AuthTokenUpdateStrategy": "ROTATE", "ApplyImmediately": True})  # fmt: skip
        stub.add_response("describe_replication_groups", group("modifying", True), {"ReplicationGroupId": "unit-prod-redis"})
        stub.add_response("describe_replication_groups", group("available", True), {"ReplicationGroupId": "unit-prod-redis"})
        done = redis.ensure_auth(elasticache, ssm, "prod", env, "unit-prod-redis", lambda p, m: events.append(m), poll=0)
        stub.assert_no_pending_responses()
    value = ssm.get_parameter(Name="/damso/prod/data/REDIS_AUTH_TOKEN", WithDecryption=True)["Parameter"]
    assert value["Type"] == "SecureString" and len(value["Value"]) == 64 and value["Value"].isalnum()
    assert ssm.get_parameter(Name="/damso/prod/api/REDIS_AUTH_TOKEN", WithDecryption=True)["Parameter"]["Value"] == value["Value"]
    assert done == ["a generated Redis AUTH token", "AUTH on for unit-prod-redis", "api/REDIS_AUTH_TOKEN (from the data stack's token)"]
    with Stubber(elasticache) as stub:  # the second time: nothing to do
        stub.add_response("describe_replication_groups", group("available", True), {"ReplicationGroupId": "unit-prod-redis"})
        assert redis.ensure_auth(elasticache, ssm, "prod", env, "unit-prod-redis", lambda p, m: None) == []
