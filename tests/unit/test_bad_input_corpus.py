"""Every bad input gets one clear sentence, before anything is touched (issue 10).

Each case runs through the installed `damso` console script (not CliRunner: the point is what
the real entry point does), with no Docker engine and, unless it is about AWS, no AWS
credentials. Each must exit non-zero, print no traceback and no "Internal error", say what to
fix in at most two lines, the first naming the offending thing, and leave no new file. The
cases about AWS run against an in-process moto server; nothing may be created there either.

Families (issue 10): 1 usage errors, 2 unexpected exceptions, 3 config values, 4 checks that
need no network, 5 numbers, 6 empty strings, 7 wording; 0: mistakes only AWS can tell.
Families (issue 20): 8 values AWS or Docker would refuse (image references, IAM resources),
9 safety rules with gaps, 10 secrets never printed (a sentinel value absent from the output and
from every file under .damso/), 11 images built for one environment deployed to another,
12 contradictory flags and empty values, 13 roles that cannot scale yet, 14 what a review of the
recently added keys found.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.net import moto_server

# The console script installed for this Python (what `pip install` made), else the one on the PATH.
_BESIDE = Path(sys.executable).parent / "damso"
DAMSO = str(_BESIDE) if _BESIDE.is_file() else shutil.which("damso")
pytestmark = pytest.mark.skipif(DAMSO is None, reason="the damso console script is not installed")

GOOD = """
[project]
name = "corpus"

[registry]
host = "registry.test"
namespace = "team"

[repositories.app]
url = "file:///nonexistent/app.git"

[services.api]
repo = "app"
image = "api"

[services.web]
repo = "app"
image = "web"
env_build_args = ["API_URL"]

[environments.prod]
region = "us-east-1"
domain = "corpus.test"
ssh_cidrs = ["203.0.113.10/32"]

[environments.prod.build_args]
API_URL = "https://api.corpus.test"

[environments.prod.roles.api]
instance_type = "t3.small"
ami = "ami-0abcdef1234567890"
services = ["api"]
secrets = ["API_TOKEN"]

[environments.prod.roles.livekit]
ami = "ami-0abcdef1234567890"

[environments.prod.livekit]
webhook_urls = ["https://api.corpus.test/webhook/livekit"]

[environments.prod.gpu_dev.alice]
instance_type = "g5.xlarge"
ssh_cidrs = ["198.51.100.20/32"]

[environments.sandbox]
sandbox = true

[environments.sandbox.build_args]
API_URL = "http://localhost:8080"

[environments.sandbox.roles.api]
ami = "ami-1e749f67"
services = ["api"]
"""

DIGEST = "sha256:" + "d" * 64
RECORD = {
    "service": "api", "repository": "app", "url": "file:///nonexistent/app.git", "ref": "v1", "commit": "c" * 40,
    "image": "registry.test/team/api", "tags": ["sha-cccccccccccc"], "digest": DIGEST, "build_args": {},
    "status": "built", "built_at": "2026-01-01T00:00:00+00:00",
}  # fmt: skip


def manifest(**record) -> str:
    return json.dumps({"id": "b1", "created": "t", "env": None, "images": {"api": {**RECORD, **record}}})


def web_built_for(env: str | None, api_url: str) -> str:
    """A build manifest whose web image baked in API_URL=api_url (recorded as built for env)."""
    web = {**RECORD, "service": "web", "image": "registry.test/team/web", "build_args": {"API_URL": api_url}, "env": env}
    if env is None:  # a manifest from before images recorded their environment
        del web["env"]
    return json.dumps({"id": "b2", "created": "t", "env": env, "images": {"api": RECORD, "web": web}})


@dataclass(frozen=True)
class Case:
    family: int
    args: tuple[str, ...]
    expect: str  # in the first line: the offending thing, named
    edit: tuple[str, str] | None = None  # (old, new) in the good damso.toml
    toml: str | None = None  # the whole damso.toml instead
    files: dict[str, str | bytes] = field(default_factory=dict)  # more files in the project
    env: dict[str, str] = field(default_factory=dict)
    aws: bool = False  # against the moto server, with (fake) credentials
    stdin: str = ""
    sentinel: str | None = None  # a secret value: never in stdout, stderr or any file under .damso/


def case(family: int, *args: str, expect: str, **kw) -> Case:
    return Case(family, tuple(args), expect, **kw)


def conf(old: str, new: str, expect: str, *args: str, family: int = 3, sentinel: str | None = None) -> Case:
    """A config mistake: the good damso.toml with one edit, run through a command that loads it."""
    return Case(family, tuple(args or ("plan", "prod")), expect, edit=(old, new), sentinel=sentinel)


ROLE = '[environments.prod.roles.api]\ninstance_type = "t3.small"\n'
BOX = '[environments.prod.gpu_dev.alice]\ninstance_type = "g5.xlarge"\n'
LIVEKIT = '[environments.prod.livekit]\n'
PROD = '[environments.prod]\nregion = "us-east-1"\n'
WEBHOOK = 'webhook_urls = ["https://api.corpus.test/webhook/livekit"]'
LATEST = ".damso/builds/latest.json"
LIVEKIT_ROLE = "[environments.prod.roles.livekit]\n"
WEB_ROLE = '[environments.prod.roles.web]\nami = "ami-0abcdef1234567890"\nservices = ["web"]\n\n' + LIVEKIT_ROLE
SECRET = "s3ntinel-Value-9f8e7d6c5b4a"  # must never be printed or written
TOKEN = "ghp_" + "S3ntinelT0ken" * 3


def statement(actions: str, resources: str = '["*"]') -> tuple[str, str]:
    """An edit adding an IAM statement to the api role."""
    return LIVEKIT_ROLE, f"[[environments.prod.roles.api.aws.statements]]\nactions = {actions}\nresources = {resources}\n\n{LIVEKIT_ROLE}"


def with_data_stack(project: str) -> str:
    return GOOD.replace('name = "corpus"', f'name = "{project}"').replace(PROD, PROD + 'stacks = ["data"]\n')

CASES = [
    # ---- 1: command-line usage errors (click's message, exit 2, never "Internal error") ----
    case(1, "nosuch", expect="No such command 'nosuch'"),
    case(1, "biuld", expect="No such command 'biuld'"),
    case(1, "--nosuch", expect="--nosuch"),
    case(1, "build", "--nosuch", expect="--nosuch"),
    case(1, "deploy", expect="Missing argument"),
    case(1, "secrets", "set", "prod", expect="Missing argument"),
    case(1, "secrets", "nosuch", expect="No such command 'nosuch'"),
    case(1, "dev", "gpu", "nosuch", expect="No such command 'nosuch'"),
    case(1, "livekit", "nosuch", expect="No such command 'nosuch'"),
    case(1, "build", "--jobs", "many", expect="'--jobs'"),
    case(1, "deploy", "prod", "--jobs", "x", expect="'--jobs'"),
    case(1, "livekit", "token", "--identity", "alice", expect="'--room'"),
    case(1, "--config", expect="'--config'"),
    case(1, "logs", "prod", expect="Missing argument"),
    case(1, "rollback", "prod", "--to", expect="'--to'"),
    case(1, "status", "prod", "--stale-after", "soon", expect="'--stale-after'"),
    case(1, "deploy", "prod", "--yes", "--yes", "extra", expect="extra"),
    case(1, "releases", "prod", "--limit", "1.5", expect="'--limit'"),
    # ---- 2: what used to reach the catch-all ----
    case(2, "plan", "prod", expect="is not UTF-8", files={"damso.toml": b"[project]\nname = \"\xff\xfe\"\n"}),
    case(2, "deploy", "prod", "--build-manifest", ".damso", expect="is a folder"),
    case(2, "deploy", "prod", "--build-manifest", "m.json", expect="m.json is unreadable", files={"m.json": b"\xff\xfe{"}),
    case(2, "deploy", "prod", "--build-manifest", "m.json", expect="m.json is unreadable", files={"m.json": "[1, 2]"}),
    case(2, "deploy", "prod", "--build-manifest", "m.json", expect="m.json is unreadable",
         files={"m.json": json.dumps({"id": "b", "created": "t", "images": [1]})}),
    case(2, "plan", "prod", expect="images.api has digest 'latest'", files={LATEST: manifest(digest="latest")}),
    case(2, "plan", "prod", expect="images.api has commit 'main'", files={LATEST: manifest(commit="main")}),
    case(2, "plan", "prod", expect="images.api has tags", files={LATEST: manifest(tags=[])}),
    case(2, "plan", "prod", expect="images.api has no usable image name", files={LATEST: manifest(image="")}),
    case(2, "deploy", "prod", "--build-manifest", "none.json", expect="No build manifest at"),
    case(2, "plan", "prod", expect="state", env={"DAMSO_STATE_DIR": "state"}, files={"state": "a file, not a folder\n"}),
    case(2, "deploy", "prod", "--yes", expect="prod.env is not UTF-8", aws=True,
         files={".damso/secrets/prod.env": b"API_TOKEN=\xff\n"}),
    # ---- 3: config values AWS, Terraform, Docker or git would refuse ----
    conf(ROLE, ROLE.replace("t3.small", "t3-small"), "roles.api.instance_type: 't3-small' is not an EC2 instance type"),
    conf(ROLE, ROLE.replace("t3.small", "T3.Small"), "'T3.Small' is not an EC2 instance type"),
    conf(ROLE, ROLE.replace("t3.small", "small"), "'small' is not an EC2 instance type"),
    conf(BOX, BOX.replace("g5.xlarge", "g5 xlarge"), "gpu_dev.alice.instance_type: 'g5 xlarge'"),
    conf(PROD, PROD.replace("us-east-1", "seoul"), "environments.prod.region: 'seoul' is not an AWS region"),
    conf(PROD, PROD.replace("us-east-1", "us-east1"), "'us-east1' is not an AWS region"),
    conf(PROD, PROD.replace("us-east-1", "US-EAST-1"), "'US-EAST-1' is not an AWS region"),
    conf('"203.0.113.10/32"', '"203.0.113.10/33"', "ssh_cidrs.0: '203.0.113.10/33' is not a CIDR block"),
    conf('"203.0.113.10/32"', '"not-a-cidr"', "'not-a-cidr' is not a CIDR block"),
    conf('"203.0.113.10/32"', '"203.0.113.10/24"', "did you mean 203.0.113.0/24"),
    conf('"203.0.113.10/32"', '"2001:db8::/32"', "'2001:db8::/32' is an IPv6 block"),
    conf('"203.0.113.10/32"', '"::/0"', "'::/0' is an IPv6 block"),
    conf(PROD, PROD + 'availability_zones = ["us-east-1a", "us-west-2b"]\n', "availability_zones: 'us-west-2b' is not an availability zone of us-east-1"),
    conf(PROD, PROD + 'availability_zones = ["us-east-1a", "us-east-1a"]\n', "availability_zones: lists 'us-east-1a' more than once"),
    conf('"203.0.113.10/32"', '"0.0.0.0/0"', "environments.prod.ssh_cidrs: 0.0.0.0/0 opens SSH to the whole internet"),
    conf('"198.51.100.20/32"', '"0.0.0.0/0"', "gpu_dev.alice.ssh_cidrs: 0.0.0.0/0 opens SSH"),
    conf('"198.51.100.20/32"', '"198.51.100.300/32"', "'198.51.100.300/32' is not a CIDR block"),
    conf('host = "registry.test"', 'host = "not a host!"', "registry.host: 'not a host!' is not a host[:port]"),
    conf('host = "registry.test"', 'host = "myregistry"', "'myregistry' has no '.' or ':port'"),
    conf('host = "registry.test"', 'host = "registry.test:99999"', "'registry.test:99999' has no valid port"),
    conf('namespace = "team"', 'namespace = "Team"', "registry.namespace: 'Team' is not a Docker repository path"),
    conf(PROD, PROD + 'state_bucket = "My_Bucket"\n', "state_bucket: 'My_Bucket' is not a valid S3 bucket name"),
    conf(PROD, PROD + 'state_bucket = "tf"\n', "'tf' is not a valid S3 bucket name"),
    conf(PROD, PROD + 'state_bucket = "10.0.0.1"\n', "'10.0.0.1' is not a valid S3 bucket name"),
    conf('name = "corpus"', 'name = "my_corpus"', "project.name: 'my_corpus' makes the bucket name 'my_corpus-e-artifacts-ACCOUNT'"),
    conf(PROD, '[environments.prod_eu.build_args]\nAPI_URL = "x"\n' + PROD, "environments.prod_eu: with project.name 'corpus' makes the bucket name"),
    conf('name = "corpus"', 'name = "' + "c" * 40 + '"', "must be 3 to 63 characters long"),
    conf(WEBHOOK, WEBHOOK.replace("https", "http"), "webhook_urls.0: 'http://api.corpus.test/webhook/livekit' must be an https:// URL"),
    conf(WEBHOOK, WEBHOOK.replace("corpus.test/", "corpus.test:99999/"), "webhook_urls.0: 'https://api.corpus.test:99999"),
    conf(LIVEKIT, LIVEKIT + "port = 7883\n", "port and tcp_port are both 7883"),
    conf(LIVEKIT, LIVEKIT + "udp_port_start = 60000\nudp_port_end = 50000\n", "udp_port_end must be greater than udp_port_start"),
    conf(LIVEKIT, LIVEKIT + "port = 70000\n", "livekit.port"),
    conf(LIVEKIT, LIVEKIT + 'subdomain = "Live Kit"\n', "livekit.subdomain: 'Live Kit'"),
    conf('ami = "ami-0abcdef1234567890"\nservices', 'ami = "ubuntu-24.04"\nservices', "roles.api.ami: 'ubuntu-24.04' is not an AMI id"),
    conf('domain = "corpus.test"', 'domain = "https://corpus.test"', "domain: 'https://corpus.test' is not a DNS name"),
    conf(PROD, PROD + 'zone_id = "sodam.store"\n', "zone_id: 'sodam.store' is not a Route53 hosted zone id"),
    conf(PROD, PROD + 'certificate_arn = "arn:cert"\n', "certificate_arn: 'arn:cert' is not an ACM certificate ARN"),
    conf(PROD, PROD + 'certificate_arn = "arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-4e5f-6789-abcd-ef0123456789"\n',
         "certificate_arn is a certificate of eu-west-1"),
    conf('url = "file:///nonexistent/app.git"', 'url = "-oProxyCommand=evil"', "repositories.app.url: '-oProxyCommand=evil' starts with '-'"),
    conf('url = "file:///nonexistent/app.git"', 'url = "ftp://example.com/app.git"', "uses ftp://"),
    conf('url = "file:///nonexistent/app.git"', 'url = "file:///nonexistent/app.git"\ndefault_ref = "main branch"',
         "default_ref: 'main branch' is not a git branch"),
    conf(ROLE, ROLE + "health_timeout = 0\n", "roles.api.health_timeout"),
    conf(ROLE, ROLE + "health_timeout = 9999999\n", "roles.api.health_timeout"),
    conf(ROLE, ROLE + "volume_size = 4\n", "roles.api.volume_size"),
    conf(BOX, BOX + "warn_after_hours = -1\n", "gpu_dev.alice.warn_after_hours"),
    conf(BOX, BOX + 'user = "Root User"\n', "gpu_dev.alice.user: 'Root User' is not a login name"),
    conf(BOX, BOX + 'key_name = ""\n', "gpu_dev.alice.key_name"),
    conf(ROLE, ROLE.replace("instance_type", "instance_typ"), "roles.api.instance_typ is not a known setting"),
    conf('image = "api"', 'image = "api-"', "services.api.image: 'api-' is not a Docker repository path"),
    conf("[registry]", "[registry\n", "is not valid TOML"),
    # ---- 4: checks that need no network, made before AWS, Docker, a lock or a bucket ----
    case(4, "livekit", "webhooks", "add", "http://3.sodam.store/webhook/livekit", "--env", "prod", expect="'http://3.sodam.store/webhook/livekit' is not an https:// URL"),
    case(4, "livekit", "webhooks", "add", "https://3.sodam.store:99999/hook", "--env", "prod", expect="is not an https:// URL"),
    case(4, "logs", "prod", "apii", expect="Unknown role 'apii' in prod"),
    case(4, "rollback", "prod", "--converge-local", "--yes", expect="--converge-local is only for sandbox environments; prod"),
    case(4, "deploy", "prod", "--converge-local", "--yes", expect="--converge-local is only for sandbox environments; prod"),
    case(4, "livekit", "up", "--env", "prod", "--converge-local", "--yes", expect="--converge-local is only for sandbox"),
    case(4, "build", "--env", "nosuch", expect="Unknown environment 'nosuch'"),
    case(4, "build", "--ref", "nosuch=v1", expect="unknown repository 'nosuch'"),
    case(4, "build", "apii", expect="Unknown service 'apii'"),
    case(4, "build", "web", expect="Service 'web' bakes per-environment settings"),
    case(4, "build", "--ref", "a..b", expect="'a..b' is not a git branch, tag or commit name"),
    case(4, "build", "api", "--platform", "amd64", expect="--platform 'amd64' is not a platform"),
    case(4, "build", "api", "--ref", "v1", expect="No credentials for registry registry.test"),
    case(4, "destroy", "prod", "--only", "apii", "--confirm", "prod", expect="Unknown role 'apii' in prod"),
    case(4, "destroy", "prod", "--confirm", "prdo", expect="Confirmation 'prdo' does not match"),
    case(4, "livekit", "down", "--env", "prod", "--confirm", "dev", expect="Confirmation 'dev' does not match"),
    case(4, "livekit", "status", "--env", "sandbox", expect="sandbox has no LiveKit server"),
    case(4, "secrets", "set", "prod", "apii", "API_TOKEN", expect="Unknown role 'apii' in prod", stdin="value\n"),
    case(4, "secrets", "set", "prod", "api", "api-token", expect="'api-token' is not a valid secret name", stdin="value\n"),
    case(4, "secrets", "set", "prod", "api", "API_TOKEN", "--from-env", "UNSET_VARIABLE", expect="UNSET_VARIABLE is not set"),
    case(4, "secrets", "rm", "prod", "api", "bad name", expect="'bad name' is not a valid secret name"),
    case(4, "secrets", "list", "prod", "apii", expect="Unknown role 'apii' in prod"),
    case(4, "dev", "gpu", "start", "bob", "--env", "prod", expect="Unknown GPU dev box 'bob'"),
    case(4, "dev", "gpu", "ssh", "alice", "--env", "sandbox", "--exec", expect="--exec cannot reach a sandbox box"),
    case(4, "rollback", "prod", "--to", "yesterday", "--yes", expect="--to 'yesterday' is not a release id"),
    case(4, "deploy", "prdo", "--yes", expect="Unknown environment 'prdo'"),
    case(4, "status", "prdo", expect="Unknown environment 'prdo'"),
    case(4, "plan", "prod", "--only", "apii", expect="Unknown role 'apii' in prod"),
    case(4, "livekit", "keys", "--env", "prod", "--format", "yaml", expect="--format must be env or json, not 'yaml'"),
    case(4, "deploy", "sandbox", "--only", "web", expect="Unknown role 'web' in sandbox"),
    # ---- 5: numbers out of bounds ----
    case(5, "build", "--jobs", "0", expect="'--jobs'"),
    case(5, "build", "--jobs", "1000", expect="'--jobs'"),
    case(5, "deploy", "prod", "--jobs", "0", expect="'--jobs'"),
    case(5, "deploy", "prod", "--timeout", "-5", expect="'--timeout'"),
    case(5, "deploy", "prod", "--timeout", "nan", expect="'--timeout'"),
    case(5, "deploy", "prod", "--lock-timeout", "inf", expect="'--lock-timeout'"),
    case(5, "status", "prod", "--stale-after", "nan", expect="'--stale-after'"),
    case(5, "dev", "gpu", "start", "alice", "--env", "prod", "--ssh-timeout", "nan", expect="'--ssh-timeout'"),
    case(5, "deploy", "prod", "--lock-timeout", "-1", expect="'--lock-timeout'"),
    case(5, "livekit", "token", "--room", "r", "--identity", "i", "--ttl", "-1", expect="'--ttl'"),
    case(5, "livekit", "token", "--room", "r", "--identity", "i", "--ttl", "0", expect="'--ttl'"),
    case(5, "livekit", "token", "--room", "r", "--identity", "i", "--ttl", "99999999", expect="'--ttl'"),
    case(5, "status", "prod", "--stale-after", "0", expect="'--stale-after'"),
    case(5, "releases", "prod", "--limit", "-1", expect="'--limit'"),
    case(5, "logs", "prod", "api", "--lines", "-1", expect="'--lines'"),
    case(5, "logs", "prod", "api", "--lines", "100000", expect="'--lines'"),
    case(5, "dev", "gpu", "start", "alice", "--env", "prod", "--ssh-timeout", "0", expect="'--ssh-timeout'"),
    case(5, "rollback", "prod", "--timeout", "-5", expect="'--timeout'"),
    case(5, "livekit", "up", "--env", "prod", "--timeout", "100000", expect="'--timeout'"),
    # ---- 6: empty strings where a value is required ----
    case(6, "build", "--ref", "", expect="'--ref'"),
    case(6, "build", "--ref", "v1", "--ref", "app=", expect="--ref app=: the ref after '=' is empty"),
    case(6, "build", "", expect="services"),
    case(6, "build", "--env", "", expect="'--env'"),
    case(6, "build", "--platform", "", expect="'--platform'"),
    case(6, "deploy", "", "--yes", expect="'env'"),
    case(6, "status", "", expect="'env'"),
    case(6, "deploy", "prod", "--only", "", expect="'--only'"),
    case(6, "secrets", "set", "prod", "api", "", expect="'name'"),
    case(6, "secrets", "set", "prod", "", "API_TOKEN", expect="'role'"),
    case(6, "secrets", "set", "prod", "api", "API_TOKEN", "--from-env", "", expect="'--from-env'"),
    case(6, "secrets", "set", "prod", "api", "API_TOKEN", expect="The value for secret API_TOKEN is empty"),
    case(6, "livekit", "token", "--room", "", "--identity", "alice", expect="'--room'"),
    case(6, "livekit", "token", "--room", "demo", "--identity", " ", expect="'--identity'"),
    case(6, "livekit", "token", "--room", "demo", "--identity", "alice", "--name", "", expect="'--name'"),
    case(6, "rollback", "prod", "--to", "", expect="'--to'"),
    case(6, "logs", "prod", "", expect="'role'"),
    case(6, "livekit", "webhooks", "add", "", expect="'url'"),
    case(6, "dev", "gpu", "start", "", expect="'name'"),
    case(6, "livekit", "up", "--env", "", expect="'--env'"),
    # ---- 7: wording ----
    case(7, "--config", "conf", "plan", "prod", expect="Config path conf is a folder, not a file", files={"conf/keep": ""}),
    case(7, "--config", ".", "plan", "prod", expect="Config path . is a folder"),
    case(7, "plan", "prod", expect="damso.toml is a folder, not a file", toml="", files={"damso.toml/keep": ""}),
    case(7, "plan", "prod", expect="is a folder", env={"DAMSO_CONFIG": "conf"}, files={"conf/keep": ""}),
    case(7, "--config", "none.toml", "plan", "prod", expect="Config file none.toml does not exist"),
    # ---- 0: mistakes only AWS can tell (against the emulator: nothing created there) ----
    case(0, "secrets", "rm", "prod", "api", "NOT_SET", expect="Secret NOT_SET is not set for role api of prod", aws=True),
    case(0, "deploy", "prod", "--yes", expect="Secret not set for prod: api/API_TOKEN", aws=True),
    case(0, "status", "prod", expect="prod was never deployed", aws=True),
    case(0, "releases", "prod", expect="prod was never deployed", aws=True),
    case(0, "logs", "prod", "api", expect="prod was never deployed", aws=True),
    case(0, "rollback", "prod", "--yes", expect="prod was never deployed", aws=True),
    case(0, "livekit", "keys", "--env", "prod", expect="prod's LiveKit server has no keys yet", aws=True),
    case(0, "livekit", "webhooks", "rm", "https://x.corpus.test/hook", "--env", "prod", expect="prod's LiveKit server is not up yet", aws=True),
    case(0, "livekit", "token", "--room", "demo", "--identity", "alice", "--env", "prod", expect="no keys yet", aws=True),
]


CASES += [
    # ---- 8: values AWS or Docker would refuse (issue 20) ----
    conf(LIVEKIT, LIVEKIT + 'image = "livekit/livekit-server@sha256:0a1b2c3d"\n',
         "livekit.image: 'livekit/livekit-server@sha256:0a1b2c3d' has a sha256 digest of 8 hex digits", family=8),
    conf(LIVEKIT, LIVEKIT + 'image = "LiveKit/livekit-server:v1.8.4"\n', "livekit.image: 'LiveKit/livekit-server:v1.8.4' has upper case", family=8),
    conf(LIVEKIT, LIVEKIT + 'caddy_image = "caddy:2.8.4@sha256:' + "a" * 63 + '"\n', "livekit.caddy_image", family=8),
    conf(LIVEKIT, LIVEKIT + 'caddy_image = "Caddy:2.8.4"\n', "livekit.caddy_image: 'Caddy:2.8.4' has upper case", family=8),
    conf(LIVEKIT, LIVEKIT + 'caddy_image = "caddy:-2.8"\n', "livekit.caddy_image: 'caddy:-2.8' is not an image reference", family=8),
    conf(LIVEKIT, LIVEKIT + 'image = "ghcr.io/livekit//server:v1"\n', "livekit.image: 'ghcr.io/livekit//server:v1' is not an image reference", family=8),
    conf(LIVEKIT, LIVEKIT + 'image = "livekit/livekit-server@md5:' + "a" * 32 + '"\n', "livekit.image", family=8),
    case(8, "plan", "prod", expect="images.api has image 'registry.test/team/API@sha256:", files={LATEST: manifest(image="registry.test/team/API")}),
    conf(*statement('["s3:GetObject"]', '["my-bucket"]'), "aws.statements.0.resources.0: 'my-bucket' is not an ARN or '*'", family=8),
    conf(*statement('["s3:GetObject"]', '["arn:aws:s3"]'), "resources.0: 'arn:aws:s3' is not an ARN", family=8),
    conf(*statement('["s3:GetObject"]', '["s3://my-bucket/*"]'), "resources.0: 's3://my-bucket/*' is not an ARN", family=8),
    # ---- 9: safety rules with gaps ----
    conf(*statement('["s3:**"]'), "aws.statements.0.actions.0: 's3:**' allows every action of s3", family=9),
    conf(*statement('["*:*"]'), "actions.0: '*:*' allows actions of every service", family=9),
    conf(*statement('["*"]'), "actions.0: '*' allows every action of every service", family=9),
    conf(*statement('["s3:*?"]'), "actions.0: 's3:*?' allows every action of s3", family=9),
    conf(*statement('["IAM:PassRole"]'), "actions.0: 'IAM:PassRole' is an iam: or sts: action", family=9),
    conf(*statement('["s*:GetObject"]'), "actions.0: 's*:GetObject' has a wildcard in its service", family=9),
    # ---- 10: secrets never printed, never accepted outside 'damso secrets set' ----
    conf('namespace = "team"', f'namespace = "team"\npassword_env = "{TOKEN}"', "registry.password_env: must be the name of an environment variable",
         family=10, sentinel=TOKEN),
    conf('namespace = "team"', f'namespace = "team"\nusername_env = "{SECRET}"', "registry.username_env: must be the name of an environment variable",
         family=10, sentinel=SECRET),
    conf('namespace = "team"', f'namespace = "team"\npassword_env = "{TOKEN}"', "registry.password_env", "build", "api", "--ref", "v1",
         family=10, sentinel=TOKEN),
    conf('secrets = ["API_TOKEN"]', f'secrets = ["API_TOKEN={SECRET}"]', "roles.api.secrets.0 is NAME=value", family=10, sentinel=SECRET),
    conf('secrets = ["API_TOKEN"]', f'secrets = ["{TOKEN}"]', "roles.api.secrets.0: looks like a secret's value", family=10, sentinel=TOKEN),
    conf('secrets = ["API_TOKEN"]', f'secrets = ["API_TOKEN"]\nenv = {{ API_TOKEN = "{SECRET}" }}',
         "roles.api.env.API_TOKEN: must not be typed here: API_TOKEN is one of the role's secrets", family=10, sentinel=SECRET),
    conf('secrets = ["API_TOKEN"]', f'secrets = ["API_TOKEN"]\nenv = {{ GITHUB_TOKEN = "{TOKEN}" }}',
         "roles.api.env.GITHUB_TOKEN: looks like a credential", family=10, sentinel=TOKEN),
    conf('API_URL = "https://api.corpus.test"', f'API_URL = "https://api.corpus.test"\nAPI_TOKEN = "{SECRET}"',
         "environments.prod.build_args.API_TOKEN: must not be set: API_TOKEN is a secret", family=10, sentinel=SECRET),
    case(10, "secrets", "set", "prod", "api", f"API_TOKEN={SECRET}", expect="The secret name is NAME=value", sentinel=SECRET),
    case(10, "secrets", "set", "prod", "api", f"API_TOKEN={SECRET}", expect="The secret name is NAME=value", sentinel=SECRET, aws=True),
    case(10, "secrets", "rm", "prod", "api", f"API_TOKEN={SECRET}", expect="The secret name is NAME=value", sentinel=SECRET),
    case(10, "secrets", "set", "prod", "api", TOKEN, expect="The secret name looks like a secret's value", sentinel=TOKEN, stdin="x\n"),
    case(10, "secrets", "set", "prod", "api", "API_TOKEN", SECRET, expect="damso secrets takes no value on the command line", sentinel=SECRET),
    case(10, "secrets", "rm", "prod", "api", "API_TOKEN", SECRET, expect="damso secrets takes no value on the command line", sentinel=SECRET),
    conf('secrets = ["API_TOKEN"]', f'secrets = ["API_TOKEN"]\nenv = {{ "API_TOKEN={SECRET}" = "x" }}', "roles.api.env.(a key, not shown) is refused",
         family=10, sentinel=SECRET),
    case(10, "secrets", "set", "prod", "api", "API_TOKEN", "--from-env", SECRET, expect="--from-env takes the name of an environment variable",
         sentinel=SECRET),
    # ---- 11: images built for one environment, deployed to another ----
    case(11, "deploy", "prod", "--yes", expect="The web image was built for sandbox", edit=(LIVEKIT_ROLE, WEB_ROLE),
         files={LATEST: web_built_for("sandbox", "http://localhost:8080")}),
    case(11, "plan", "prod", expect="The web image was built for sandbox", edit=(LIVEKIT_ROLE, WEB_ROLE),
         files={LATEST: web_built_for(None, "http://localhost:8080")}),
    case(11, "deploy", "prod", "--yes", "--only", "web", expect="The web image was built with prod's earlier API_URL (changed in damso.toml since)",
         edit=(LIVEKIT_ROLE, WEB_ROLE), files={LATEST: web_built_for("prod", "https://old-api.corpus.test")}),
    case(11, "deploy", "prod", "--yes", expect="built for staging, so it would carry staging's API_URL into prod; run 'damso build --ref v1 web --env prod'",
         edit=(LIVEKIT_ROLE, WEB_ROLE), files={LATEST: web_built_for("staging", "https://api.staging.corpus.test")}, aws=True),
    case(11, "deploy", "prod", "--yes", expect="with API_URL of no environment in damso.toml, not prod's", edit=(LIVEKIT_ROLE, WEB_ROLE),
         files={LATEST: web_built_for(None, "https://somewhere.else")}),
    # ---- 12: contradictory flags and empty values ----
    case(12, "deploy", "prod", "--build-manifest", "", expect="'--build-manifest'"),
    case(12, "plan", "prod", "--build-manifest", "", expect="'--build-manifest'"),
    case(12, "deploy", "prod", "--rollback", "--no-wait", "--yes", expect="--rollback needs --wait"),
    case(12, "deploy", "prod", "--no-wait", "--timeout", "60", "--yes", expect="--timeout is how long to wait for health, but --no-wait"),
    case(12, "rollback", "prod", "--no-wait", "--timeout", "60", "--yes", expect="--timeout is how long to wait"),
    case(12, "livekit", "up", "--env", "prod", "--no-wait", "--timeout", "60", "--yes", expect="--timeout is how long to wait"),
    case(12, "dev", "gpu", "start", "alice", "--env", "prod", "--no-ssh-wait", "--ssh-timeout", "60", expect="--ssh-timeout is how long to wait for SSH"),
    # ---- 13: roles that cannot scale yet ----
    conf(LIVEKIT_ROLE, LIVEKIT_ROLE + "count = 2\n", "roles.livekit.count is 2, but LiveKit runs as one server here", family=13),
    conf(LIVEKIT_ROLE, LIVEKIT_ROLE + "count = 3\n", "roles.livekit.count is 3", "livekit", "up", "--env", "prod", "--yes", family=13),
    # ---- 14: the review of recently added keys: what AWS, compose or the host would refuse later ----
    conf(ROLE, ROLE + 'compose_template = "compose/nope.yml.j2"\n', "roles.api.compose_template: template compose/nope.yml.j2 was not found",
         family=14),
    conf(LIVEKIT, LIVEKIT + "tls = true\nport = 443\n", "livekit: port is 443, which Caddy holds with tls = true", family=14),
    conf('"203.0.113.10/32"', '"203.0.113.10/32", "203.0.113.10/32"', "environments.prod.ssh_cidrs: lists 203.0.113.10/32 more than once",
         family=14),
    conf(PROD, PROD + "rollback = false\nrollback_earlier_waves = true\n", "rollback_earlier_waves is true while rollback is false", family=14),
    conf(PROD, PROD + 'rollout = [[], ["api", "livekit"]]\n', "environments.prod.rollout: has an empty wave", family=14),
    conf(ROLE, ROLE + 'stop_grace_period = "20m"\n', "roles.api.stop_grace_period: 20m is longer than health_timeout (600 s)", family=14),
    conf(ROLE, ROLE + 'env = { MOTD = "first\\nsecond" }\n', "roles.api.env.MOTD: has a line break", family=14),
    conf(LIVEKIT, LIVEKIT + 'subdomain = "-live"\n', "livekit.subdomain: '-live' is not a DNS label", family=14),
    conf(LIVEKIT, LIVEKIT + 'subdomain = "' + "l" * 64 + '"\n', "is not a DNS label", family=14),
    conf(WEBHOOK, WEBHOOK.replace('"]', '", "https://api.corpus.test/webhook/livekit"]'), "webhook_urls: lists https://api.corpus.test/webhook/livekit more than once", family=14),
    case(14, "plan", "prod", expect="environments.prod: makes an ElastiCache replication group id 'corpus-operations-platform-xyz-prod-redis' of 41",
         toml=with_data_stack("corpus-operations-platform-xyz")),
    case(14, "plan", "prod", expect="roles.speech-to-text-gpu-workers-pool-east: makes an IAM role name",
         toml=GOOD.replace('name = "corpus"', 'name = "corpus-operations-platform"'),
         edit=("[environments.prod.roles.livekit]", "[environments.prod.roles.speech-to-text-gpu-workers-pool-east]")),
]


@pytest.fixture(scope="module")
def moto_endpoint():
    with moto_server() as url:
        yield url


def project(base: Path, c: Case) -> Path:
    """A project folder with the good config (or the case's), a build manifest and a log file."""
    root = base / "project"
    (root / ".damso" / "builds").mkdir(parents=True)
    (root / ".damso" / "logs").mkdir()
    (root / ".damso" / "logs" / "damso.log").write_text("")
    (root / LATEST).write_text(manifest())
    text = GOOD if c.toml is None else c.toml
    if c.edit:
        assert GOOD.count(c.edit[0]) >= 1, c.edit[0]
        text = text.replace(c.edit[0], c.edit[1], 1)
    if c.toml != "":
        (root / "damso.toml").write_text(text)
    for name, body in c.files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body if isinstance(body, bytes) else body.encode())
    (base / "home").mkdir()
    return root


def snapshot(base: Path) -> set[str]:
    return {str(p.relative_to(base)) for p in base.rglob("*")}


def environment(base: Path, c: Case, moto: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DAMSO_", "DOCKER_", "GHCR_", "REGISTRY_"))}
    env = {
        **keep,
        "HOME": str(base / "home"),
        "XDG_CACHE_HOME": str(base / "home" / ".cache"),
        "DAMSO_CACHE_DIR": str(base / "home" / "cache"),
        "DOCKER_HOST": "unix:///nonexistent/docker.sock",  # no engine
        "AWS_SHARED_CREDENTIALS_FILE": str(base / "no-credentials"),
        "AWS_CONFIG_FILE": str(base / "no-config"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "CI": "true",
        "NO_COLOR": "1",
    }
    if c.aws:
        env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_ENDPOINT_URL=moto)
    return {**env, **c.env}


def run(c: Case, base: Path, moto: str) -> str | None:
    """None when the case holds, else what went wrong."""
    root = project(base, c)
    before = snapshot(base)
    proc = subprocess.run([DAMSO, *c.args], cwd=root, env=environment(base, c, moto), input=c.stdin,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    lines = [line for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
    new = sorted(snapshot(base) - before)
    problems = []
    if proc.returncode == 0:
        problems.append("exit 0")
    if "Traceback" in proc.stderr or "Internal error" in proc.stderr:
        problems.append("a traceback or an Internal error")
    if not lines or not lines[0].startswith("Error: ") or len(lines) > 2:
        problems.append(f"{len(lines)} lines, not one or two starting with 'Error: '")
    elif c.expect.lower() not in lines[0].lower():  # typer versions differ in the case of argument names
        problems.append(f"the first line does not say {c.expect!r}")
    if new:
        problems.append(f"new files {new}")
    if c.sentinel:
        leaked = [name for name, text in (("stdout", proc.stdout), ("stderr", proc.stderr)) if c.sentinel in text]
        leaked += [str(p.relative_to(root)) for p in (root / ".damso").rglob("*") if p.is_file() and c.sentinel.encode() in p.read_bytes()]
        if leaked:
            problems.append(f"the secret value is in {', '.join(leaked)}")
    if problems:
        return f"damso {' '.join(map(repr, c.args))} [family {c.family}]: {'; '.join(problems)}\n" + "\n".join(lines[:6])
    return None


def test_the_corpus_is_large_and_covers_every_family():
    counts = Counter(c.family for c in CASES)
    assert len(CASES) >= 80 and all(counts[f] >= 5 for f in range(1, 8)), counts
    assert all(counts[f] >= 2 for f in range(8, 15)), counts  # issue 20's families
    assert all(c.sentinel for c in CASES if c.family == 10)  # every secret case checks its value never shows


def test_every_bad_input_gets_one_sentence_and_changes_nothing(tmp_path, moto_endpoint):
    workers = max(4, 2 * (os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda ic: run(ic[1], tmp_path / f"case{ic[0]}", moto_endpoint), enumerate(CASES)))
    failures = [r for r in results if r]
    assert not failures, f"{len(failures)} of {len(CASES)} cases failed:\n\n" + "\n\n".join(failures)

    import boto3

    def client(service):
        return boto3.client(service, region_name="us-east-1", endpoint_url=moto_endpoint,
                            aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip

    assert client("s3").list_buckets()["Buckets"] == []
    assert client("ssm").describe_parameters()["Parameters"] == []
    assert client("ec2").describe_instances()["Reservations"] == []
    assert client("dynamodb").list_tables()["TableNames"] == []
