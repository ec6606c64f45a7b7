"""damso livekit against the embedded emulator: real terraform apply (instance, Elastic IP,
security group, Route53 record), keys in SSM, and the host's reconcile unit run for real
against the local Docker engine and registry, filling livekit.yaml from SSM."""

from __future__ import annotations

import base64
import json

import pytest

from tests.integration.conftest import sandbox_lifetime, write_config
from tests.integration.conftest import sandbox_project as make_sandbox_project
from tests.support.net import free_port

pytestmark = pytest.mark.integration

AMI = "ami-1e749f67"  # one of moto's built-in images
ENV = "lksandbox"  # not "sandbox": test_deploy_sandbox may run at the same time on the same engine
DOMAIN = "sandbox.test"
SHARED_HOOK = "https://api.sandbox.test/webhook/livekit"
DEV_HOOK = "https://3.sandbox.test/webhook/livekit"
# Stands in for livekit-server (which cannot be pulled here): serves on the configured
# port and is healthy only while the filled livekit.yaml is mounted.
COMPOSE = """\
services:
  livekit:
    image: {{ livekit.image }}
    init: true
    network_mode: host
    volumes:
      - ./livekit.yaml:/etc/livekit.yaml:ro
    command: ["/bin/busybox", "sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec /bin/busybox httpd -f -p 127.0.0.1:{{ livekit.port }} -h /www"]
    healthcheck:
      test: ["CMD", "/bin/busybox", "sh", "-c", "test -s /etc/livekit.yaml && /bin/busybox wget -qO- http://127.0.0.1:{{ livekit.port }}/"]
      interval: 2s
      timeout: 2s
      retries: 5
"""


def livekit_toml(registry_host: str, zone_id: str, port: int) -> str:
    return f"""
[environments.lksandbox]
sandbox = true
region = "ap-northeast-2"
domain = "{DOMAIN}"
zone_id = "{zone_id}"

[environments.lksandbox.build_args]
PUBLIC_URL = "https://sandbox.test"

[environments.lksandbox.roles.livekit]
ami = "{AMI}"
health_timeout = 60
secrets = ["REGISTRY_USERNAME", "REGISTRY_PASSWORD"]

[environments.lksandbox.livekit]
image = "{registry_host}/team/livekit-stand-in:v1"
tls = true
port = {port}
webhook_urls = ["{SHARED_HOOK}"]

[environments.other]
sandbox = true
[environments.other.build_args]
PUBLIC_URL = "https://other.test"
[environments.other.roles.livekit]
ami = "{AMI}"
"""


def hosted_zone(r53, domain: str, reference: str) -> str:
    """A hosted zone whose id looks like AWS's (Z…, which damso.toml's check asks for): moto
    makes up 22 characters of any letter or digit, so zones are made until one starts with Z."""
    for attempt in range(1000):
        zone = r53.create_hosted_zone(Name=domain, CallerReference=f"{reference}-{attempt}")["HostedZone"]["Id"]
        zone = zone.split("/")[-1]
        if zone.startswith("Z"):
            return zone
        r53.delete_hosted_zone(Id=zone)
    raise AssertionError("moto made no hosted zone id starting with Z in 1000 attempts")


@pytest.fixture(scope="module")
def lk(tmp_path_factory, registry, dockerd, docker_client, busybox_image, git_root):
    """A project whose sandbox has a LiveKit role; the emulator is stopped at the end."""
    from damso_ops import sandbox

    base = tmp_path_factory.mktemp("livekit")
    auth = {"username": registry.username, "password": registry.password}
    docker_client.images.get(busybox_image).tag(f"{registry.host}/team/livekit-stand-in", "v1")
    docker_client.images.push(f"{registry.host}/team/livekit-stand-in", "v1", auth_config=auth)
    env = {"LIVEKIT_API_KEY": None, "LIVEKIT_API_SECRET": None, "GHCR_USERNAME": None, "GHCR_TOKEN": None}
    project = make_sandbox_project(base, registry, dockerd, git_root, {"compose/livekit.yml.j2": COMPOSE}, "", env, build=False)
    sandbox.ensure(project.root / ".damso")
    zone = hosted_zone(project.aws.client("route53"), DOMAIN, base.name)
    project.livekit_port = free_port()
    write_config(project.root, registry.host, project.repos, livekit_toml(registry.host, zone, project.livekit_port))
    project.compose_prefix = f"damso-{ENV}-livekit"
    with sandbox_lifetime(project, dockerd.host):
        yield project



def run(project, *args, env=None):
    result = project.damso("livekit", *args, env=env)
    project.outputs.append(result.output)
    return result


def run_json(project, *args):
    result = run(project, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def instance_of(project) -> dict:
    ec2 = project.aws.client("ec2")
    found = [i for r in ec2.describe_instances(Filters=[{"Name": "tag:Role", "Values": ["livekit"]}])["Reservations"]
             for i in r["Instances"] if i["State"]["Name"] != "terminated"]  # fmt: skip
    assert len(found) == 1
    return found[0]


def keys_in_ssm(project) -> tuple[str, str]:
    ssm = project.aws.client("ssm")
    params = {}
    for name in ("LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"):
        p = ssm.get_parameter(Name=f"/damso/{ENV}/livekit/{name}", WithDecryption=True)["Parameter"]
        assert p["Type"] == "SecureString"
        params[name] = p["Value"]
    return params["LIVEKIT_API_KEY"], params["LIVEKIT_API_SECRET"]


def release_file(project, release: str, name: str) -> str:
    s3 = project.aws.client("s3")
    bucket = next(b["Name"] for b in s3.list_buckets()["Buckets"] if "artifacts" in b["Name"])
    return s3.get_object(Bucket=bucket, Key=f"{ENV}/releases/{release}/{name}")["Body"].read().decode()


def public_ports(conf: dict, caddyfile: str | None) -> set[tuple[str, int, int]]:
    """(protocol, from, to) of every port clients must reach, read from a rendered livekit.yaml:
    rtc.tcp_port and the UDP media range (and rtc.udp_port, TURN when enabled), and the signal
    port, unless Caddy terminates TLS in front of it (then Caddy's 80 and 443 instead)."""
    rtc, turn = conf["rtc"], conf.get("turn") or {}
    ports = {("tcp", rtc["tcp_port"], rtc["tcp_port"]), ("udp", rtc["port_range_start"], rtc["port_range_end"])}
    if rtc.get("udp_port"):
        ports.add(("udp", rtc["udp_port"], rtc["udp_port"]))
    if turn.get("enabled"):
        ports |= {("tcp", turn["tls_port"], turn["tls_port"]), ("udp", turn["udp_port"], turn["udp_port"])}
    if caddyfile and f"reverse_proxy 127.0.0.1:{conf['port']}" in caddyfile:
        ports |= {("tcp", 80, 80), ("tcp", 443, 443)}
    else:
        ports.add(("tcp", conf["port"], conf["port"]))
    return ports


def filled_config(project, release: str) -> tuple[dict, int]:
    import yaml

    instance = instance_of(project)["InstanceId"]
    path = project.root / ".damso" / "sandbox" / "hosts" / instance / "releases" / release / "livekit.yaml"
    return yaml.safe_load(path.read_text()), path.stat().st_mode & 0o777


@pytest.fixture(scope="module")
def first_up(lk):
    data = run_json(lk, "up", "--env", ENV, "--yes", "--converge-local")
    return data


def test_up_creates_instance_address_ports_dns_and_keys(lk, first_up):
    assert first_up["changed"] and first_up["healthy"], first_up
    assert set(first_up["stacks"]) == {"shared", "livekit"} and all(s["applied"] for s in first_up["stacks"].values())
    ec2 = lk.aws.client("ec2")
    inst = instance_of(lk)
    assert inst["InstanceType"] == "c7i.xlarge"  # the livekit role's default
    (address,) = ec2.describe_addresses(Filters=[{"Name": "instance-id", "Values": [inst["InstanceId"]]}])["Addresses"]
    (group,) = ec2.describe_security_groups(GroupIds=[g["GroupId"] for g in inst["SecurityGroups"]])["SecurityGroups"]
    rules = {(r["IpProtocol"], r["FromPort"], r["ToPort"]) for r in group["IpPermissions"]}
    conf, _ = filled_config(lk, first_up["release"])
    caddyfile = release_file(lk, first_up["release"], "livekit/Caddyfile")
    # The ports the security group opens are the ports the rendered livekit.yaml (and, with tls,
    # Caddy in front of its signal port) make the host listen on, no more and no fewer ...
    assert rules == public_ports(conf, caddyfile)
    # ... which with tls on are exactly these: the signal port itself stays closed to the world.
    assert rules == {
        ("tcp", 7883, 7883),  # rtc.tcp_port: ICE over TCP, the fallback when UDP is blocked
        ("udp", 50000, 60000),  # rtc.port_range_start/end: media
        ("tcp", 80, 80),  # Caddy: ACME
        ("tcp", 443, 443),  # Caddy: wss:// signalling
    }  # no signal port (7880 or the configured one), no 7881, and no 22: the config lists no SSH sources
    assert conf["port"] == lk.livekit_port and ("tcp", conf["port"], conf["port"]) not in rules
    status = json.loads(run(lk, "status", "--env", ENV, "--json").stdout)
    assert status["urls"] == [f"wss://livekit.{DOMAIN}"]  # only wss://: tokens never travel over plain ws
    r53 = lk.aws.client("route53")
    (zone,) = r53.list_hosted_zones()["HostedZones"]
    records = [r for r in r53.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"] if r["Type"] == "A"]
    assert [(r["Name"].rstrip("."), r["TTL"], [v["Value"] for v in r["ResourceRecords"]]) for r in records] == [
        (f"livekit.{DOMAIN}", 60, [address["PublicIp"]])
    ]
    key, secret = keys_in_ssm(lk)
    assert key.startswith("API") and len(key) == 15 and len(secret) == 43


def test_the_host_fills_livekit_yaml_with_the_keys_and_every_webhook(lk, first_up):
    key, secret = keys_in_ssm(lk)
    conf, mode = filled_config(lk, first_up["release"])
    assert conf["keys"] == {key: secret}
    assert conf["webhook"] == {"api_key": key, "urls": [SHARED_HOOK]}
    assert conf["rtc"]["node_ip"] == "127.0.0.1" and conf["rtc"]["tcp_port"] == 7883
    assert (conf["rtc"]["port_range_start"], conf["rtc"]["port_range_end"]) == (50000, 60000)
    assert mode == 0o600
    caddy = release_file(lk, first_up["release"], "livekit/Caddyfile")
    assert f"livekit.{DOMAIN} {{" in caddy and f"reverse_proxy 127.0.0.1:{conf['port']}" in caddy


def test_second_up_changes_nothing(lk, first_up):
    data = run_json(lk, "up", "--env", ENV, "--yes", "--converge-local")
    assert data["changed"] is False and data["uploaded"] == 0 and data["release"] == first_up["release"]
    assert not any(s["applied"] for s in data["stacks"].values())
    assert all(s["changes"] == {} or not any(s["changes"].values()) for s in data["stacks"].values())


def test_webhooks_add_rolls_out_without_terraform_changes(lk, first_up):
    before = instance_of(lk)["InstanceId"]
    data = run_json(lk, "webhooks", "add", DEV_HOOK, "--env", ENV, "--converge-local")
    assert data["webhook_urls"] == [SHARED_HOOK, DEV_HOOK] and data["stacks_applied"] == []
    assert data["release"] != first_up["release"]
    assert instance_of(lk)["InstanceId"] == before  # not replaced
    conf, _ = filled_config(lk, data["release"])
    assert conf["webhook"]["urls"] == [SHARED_HOOK, DEV_HOOK]
    assert run_json(lk, "webhooks", "list", "--env", ENV)["webhook_urls"] == [SHARED_HOOK, DEV_HOOK]
    removed = run_json(lk, "webhooks", "rm", DEV_HOOK, "--env", ENV, "--converge-local")
    assert removed["webhook_urls"] == [SHARED_HOOK] and removed["stacks_applied"] == []
    assert filled_config(lk, removed["release"])[0]["webhook"]["urls"] == [SHARED_HOOK]


def test_keys_and_token_for_developers(lk, first_up):
    import jwt

    key, secret = keys_in_ssm(lk)
    plain = run(lk, "keys", "--env", ENV)
    assert plain.exit_code == 0, plain.output
    assert f"LIVEKIT_API_KEY={key}\n" in plain.stdout and f"LIVEKIT_URL=wss://livekit.{DOMAIN}\n" in plain.stdout
    assert "ws://" not in plain.stdout
    assert secret not in plain.stdout and "LIVEKIT_API_SECRET" not in plain.stdout
    shown = run(lk, "keys", "--env", ENV, "--show-secret", "--format", "json")
    assert json.loads(shown.stdout)["LIVEKIT_API_SECRET"] == secret
    lk.outputs.pop()  # asked for on purpose; not part of the leak check
    token = run(lk, "token", "--env", ENV, "--room", "demo", "--identity", "alice", "--ttl", "600")
    assert token.exit_code == 0, token.output
    claims = jwt.decode(token.stdout.strip(), secret, algorithms=["HS256"])
    assert claims["iss"] == key and claims["sub"] == "alice" and claims["video"] == {"room": "demo", "roomJoin": True}
    assert claims["exp"] - claims["nbf"] == 600


def test_no_key_secret_in_state_user_data_s3_or_output(lk, first_up):
    _, secret = keys_in_ssm(lk)
    s3, ec2 = lk.aws.client("s3"), lk.aws.client("ec2")
    for bucket in (b["Name"] for b in s3.list_buckets()["Buckets"]):
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            for v in page.get("Versions", []):
                body = s3.get_object(Bucket=bucket, Key=v["Key"], VersionId=v["VersionId"])["Body"].read()
                assert secret.encode() not in body, f"the LiveKit secret leaked into s3://{bucket}/{v['Key']}"
    attr = ec2.describe_instance_attribute(InstanceId=instance_of(lk)["InstanceId"], Attribute="userData")
    user_data = base64.b64decode(attr["UserData"]["Value"]).decode()
    assert "damso-reconcile" in user_data and secret not in user_data
    for path in (lk.root / ".damso").rglob("*"):
        if path.is_file() and "hosts" not in path.parts:
            assert secret.encode() not in path.read_bytes(), f"the LiveKit secret leaked into {path}"
    for output in lk.outputs:
        assert secret not in output


def test_status_stop_start(lk, first_up):
    status = run_json(lk, "status", "--env", ENV)
    inst = instance_of(lk)
    assert status["state"] == "running" and status["instance_id"] == inst["InstanceId"]
    assert status["instance_type"] == "c7i.xlarge" and status["hourly_usd"] > 0
    assert status["report"]["status"] == "healthy" and status["images"]["livekit"].endswith("livekit-stand-in:v1")
    address = status["public_ip"]
    assert run_json(lk, "stop", "--env", ENV)["state"] == "stopped"
    assert run_json(lk, "status", "--env", ENV)["state"] == "stopped"
    started = run_json(lk, "start", "--env", ENV)
    assert started["state"] == "running" and started["public_ip"] == address  # the Elastic IP stays


def test_bad_input_changes_nothing(lk, first_up):
    unknown = run(lk, "status", "--env", "nope")
    assert unknown.exit_code == 2 and "Unknown environment 'nope'" in unknown.output
    http = run(lk, "webhooks", "add", "http://3.sandbox.test/webhook/livekit", "--env", ENV)
    assert http.exit_code == 2 and "is not an https:// URL" in http.output
    assert run_json(lk, "webhooks", "list", "--env", ENV)["webhook_urls"] == [SHARED_HOOK]
    bad = run(lk, "up", "--env", "other", "--yes", env={"LIVEKIT_API_KEY": "APIok", "LIVEKIT_API_SECRET": "short"})
    assert bad.exit_code == 2 and "is not a LiveKit API secret" in bad.output
    assert lk.aws.client("ssm").get_parameters_by_path(Path="/damso/other/", Recursive=True)["Parameters"] == []
    assert not [b for b in lk.aws.client("s3").list_buckets()["Buckets"] if "-other-" in b["Name"]]
    refused = run(lk, "down", "--env", ENV)
    assert refused.exit_code == 2 and f"pass --confirm {ENV}" in refused.output
    assert instance_of(lk)["State"]["Name"] == "running"
    for result in (unknown, http, bad, refused):
        assert "Traceback" not in result.output


def test_down_destroys_the_server_and_status_says_so(lk, first_up):
    data = run_json(lk, "down", "--env", ENV, "--confirm", ENV)
    assert data["destroyed"] == ["livekit"]
    status = run_json(lk, "status", "--env", ENV)
    assert status["state"] == "absent" and status["exists"] is False
    assert keys_in_ssm(lk)  # the keys stay for the next `up`
    r53 = lk.aws.client("route53")
    (zone,) = r53.list_hosted_zones()["HostedZones"]
    assert not [r for r in r53.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"] if r["Type"] == "A"]
