"""The sandbox emulator's wrapper lets one request at a time into moto (not thread-safe)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from damso_ops.emulator import OneAtATime


def test_requests_from_many_threads_enter_the_application_one_at_a_time():
    inside, most, closed = [0], [0], []
    guard = threading.Lock()

    class Body(list):
        def close(self):
            closed.append(True)

    def app(environ, start_response):
        with guard:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.01)
        with guard:
            inside[0] -= 1
        start_response("200 OK", [])
        return Body([environ["n"].encode()])

    wrapped = OneAtATime(app)
    with ThreadPoolExecutor(8) as pool:
        bodies = list(pool.map(lambda n: wrapped({"n": str(n)}, lambda status, headers: None), range(32)))
    assert most[0] == 1 and bodies == [[str(n).encode()] for n in range(32)] and len(closed) == 32


def _request(invocation: str, attempt: int, method: str = "POST", service: str = "ec2") -> dict:
    signature = f"AWS4-HMAC-SHA256 Credential=AKID/20261205/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"
    return {"REQUEST_METHOD": method, "PATH_INFO": "/", "HTTP_AMZ_SDK_INVOCATION_ID": invocation,
            "HTTP_AMZ_SDK_REQUEST": f"attempt={attempt}; max=25", "HTTP_AUTHORIZATION": signature}  # fmt: skip


def test_a_retried_write_that_succeeded_gets_the_same_answer_and_is_not_run_twice():
    runs, said = [], []

    def app(environ, start_response):  # a create: the second time it is refused, as moto refuses
        runs.append(environ["HTTP_AMZ_SDK_INVOCATION_ID"])
        if runs.count(environ["HTTP_AMZ_SDK_INVOCATION_ID"]) > 1:
            start_response("400 Bad Request", [])
            return [b"Resource.AlreadyAssociated"]
        start_response("200 OK", [("Content-Type", "text/xml")])
        return [b"<natGatewayId>nat-1</natGatewayId>"]

    wrapped = OneAtATime(app, log=said.append)
    started = []

    def start(status, headers):
        started.append((status, headers))

    assert wrapped(_request("inv-1", 1), start) == [b"<natGatewayId>nat-1</natGatewayId>"]
    assert wrapped(_request("inv-1", 2), start) == [b"<natGatewayId>nat-1</natGatewayId>"]  # the same answer
    assert runs == ["inv-1"] and started == [("200 OK", [("Content-Type", "text/xml")])] * 2
    assert said == ["emulator: attempt 2 of POST /, already answered 200 OK (invocation inv-1): "
                    "the same answer again, not run twice"]  # fmt: skip
    # A first attempt with an invocation id seen before is a new call's: it runs (ids are per call).
    assert wrapped(_request("inv-1", 1), start) == [b"Resource.AlreadyAssociated"]
    # A retry of a request that failed runs again; so does a retried read, and any S3 request
    # (AWS answers a retried conditional put 412, and damso's lock relies on that).
    failing = OneAtATime(lambda environ, start_response: start_response("500 Internal Server Error", []) or [b"x"],
                         log=said.append)  # fmt: skip
    failing(_request("inv-2", 1), start)
    assert failing.answers == {}
    reads = []
    reading = OneAtATime(lambda environ, start_response: reads.append(1) or start_response("200 OK", []) or [b"r"])
    reading(_request("inv-3", 1, "GET"), start)
    reading(_request("inv-3", 2, "GET"), start)
    reading(_request("inv-4", 1, "PUT", service="s3"), start)
    reading(_request("inv-4", 2, "PUT", service="s3"), start)
    assert len(reads) == 4 and len(said) == 1


GAPS = """
import boto3
from moto import mock_aws
from damso_ops import emulator_gaps

emulator_gaps.install()
emulator_gaps.install()  # twice: still one wrapper each
with mock_aws():
    zone = boto3.client("route53", region_name="us-east-1").create_hosted_zone(Name="a.test.", CallerReference="r")
    assert zone["HostedZone"]["Id"].split("/")[-1].startswith("Z"), zone
    ec = boto3.client("elasticache", region_name="ap-northeast-2")
    ec.create_cache_subnet_group(CacheSubnetGroupName="g", CacheSubnetGroupDescription="d", SubnetIds=[])
    group = ec.create_replication_group(ReplicationGroupId="demo-redis", ReplicationGroupDescription="d", Engine="redis",
                                        EngineVersion="7.1", CacheNodeType="cache.t4g.small", NumCacheClusters=1,
                                        TransitEncryptionEnabled=True, AtRestEncryptionEnabled=True,
                                        CacheSubnetGroupName="g")["ReplicationGroup"]
    (member,) = ec.describe_cache_clusters(CacheClusterId=group["MemberClusters"][0])["CacheClusters"]
    assert member["ReplicationGroupId"] == "demo-redis" and member["TransitEncryptionEnabled"], member
    ec.delete_replication_group(ReplicationGroupId="demo-redis")
    assert ec.describe_replication_groups()["ReplicationGroups"] == [] and ec.describe_cache_clusters()["CacheClusters"] == []
    ec.delete_cache_subnet_group(CacheSubnetGroupName="g")
    assert ec.describe_cache_subnet_groups()["CacheSubnetGroups"] == []
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="releases")
    s3.put_bucket_versioning(Bucket="releases", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="releases", Key="env/instances/i-1/current", Body=b"{}")
    s3.delete_object(Bucket="releases", Key="env/instances/i-1/current")  # a delete marker
    s3.put_bucket_versioning(Bucket="releases", VersioningConfiguration={"Status": "Suspended"})  # as a destroy does first
    found = s3.list_object_versions(Bucket="releases")
    every = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in found["Versions"] + found["DeleteMarkers"]]
    assert not s3.delete_objects(Bucket="releases", Delete={"Objects": every}).get("Errors")  # as force_destroy does
    assert "Versions" not in s3.list_object_versions(Bucket="releases")
    s3.delete_bucket(Bucket="releases")
print("as AWS")
"""


def test_the_emulator_makes_zone_ids_redis_replication_groups_and_bucket_emptying_as_aws_has_them():
    """Run in a process of its own: the gaps change moto's classes, which other unit tests use as moto has them."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_CONFIG_FILE": os.devnull}
    env.pop("AWS_ENDPOINT_URL", None)
    env.pop("AWS_PROFILE", None)
    done = subprocess.run([sys.executable, "-c", GAPS], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "as AWS", done.stderr[-3000:]
