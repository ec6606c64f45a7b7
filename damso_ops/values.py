"""The shapes AWS, Terraform, Docker and git accept, checked before any of them is asked.

Each check returns None for a good value, else the reason (a phrase naming the value), so
that config models (which add the key path) and the CLI (which adds the option) share them.
"""

from __future__ import annotations

import ipaddress
import re

DIRECTIONS = "north|south|east|west|central|northeast|northwest|southeast|southwest"
REGION = re.compile(rf"^[a-z]{{2}}(-gov|-iso[a-z]?)?-({DIRECTIONS})-[1-9][0-9]?$")
INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*[0-9][a-z0-9-]*\.(nano|micro|small|medium|large|[0-9]*xlarge|metal(-[0-9]+xl)?)$")
AMI = re.compile(r"^ami-[0-9a-f]{1,17}$")
DNS_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
HOSTNAME = re.compile(rf"^{DNS_LABEL}(\.{DNS_LABEL})*$")
DOCKER_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
DOCKER_PATH = re.compile(rf"^{DOCKER_COMPONENT}(/{DOCKER_COMPONENT})*$")
ZONE_ID = re.compile(r"^Z[A-Z0-9]{1,32}$")
ACM_ARN = re.compile(r"^arn:aws(-[a-z]+)*:acm:([a-z0-9-]+):[0-9]{12}:certificate/[0-9a-f-]{36}$")
PLATFORM = re.compile(r"^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$")
LINUX_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
GIT_URL_SCHEMES = ("https", "http", "ssh", "git", "file")
SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:\S+$")
OPEN_TO_ALL = ("0.0.0.0/0", "::/0")


def region(value: str) -> str | None:
    if not REGION.match(value):
        return f"{value!r} is not an AWS region (like ap-northeast-2 or us-west-2)"
    return None


def instance_type(value: str) -> str | None:
    if not INSTANCE_TYPE.match(value):
        return f"{value!r} is not an EC2 instance type (family.size, like t3.small, g5.2xlarge or c7i.xlarge)"
    return None


def ami(value: str) -> str | None:
    if value and not AMI.match(value):
        return f"{value!r} is not an AMI id (ami- and hex digits, like ami-0abcdef1234567890)"
    return None


def ipv4_cidr(value: str) -> str | None:
    """A network in CIDR notation as security group rules take it: IPv4, no host bits set."""
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return f"{value!r} is not a CIDR block (like 203.0.113.10/32 or 10.0.0.0/16)"
    if net.version != 4:
        return f"{value!r} is an IPv6 block; these rules take IPv4 CIDR blocks (like 203.0.113.10/32)"
    if str(net) != value:
        return f"{value!r} is not a network address; did you mean {net}?"
    return None


def open_to_all(cidrs: list[str]) -> list[str]:
    return [c for c in cidrs if c.strip() in OPEN_TO_ALL]


def availability_zone(value: str, in_region: str) -> str | None:
    if not re.fullmatch(rf"{re.escape(in_region)}[a-z]", value):
        return f"{value!r} is not an availability zone of {in_region} (like {in_region}a)"
    return None


def bucket(value: str) -> str | None:
    why = bucket_rule(value)
    return f"{value!r} is not a valid S3 bucket name: it {why}" if why else None


def bucket_rule(value: str) -> str | None:
    """Which of S3's naming rules for general purpose buckets the name breaks, if any."""
    if not 3 <= len(value) <= 63:
        return f"must be 3 to 63 characters long (it has {len(value)})"
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]*[a-z0-9]", value):
        return "must be lowercase letters, digits, '.' and '-', starting and ending with a letter or digit"
    if ".." in value or ".-" in value or "-." in value:
        return "must not have '..', '.-' or '-.'"
    if re.fullmatch(r"[0-9]+(\.[0-9]+){3}", value):
        return "must not look like an IP address"
    if value.startswith(("xn--", "sthree-", "amzn-s3-demo-")) or value.endswith(
        ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
    ):
        return "uses a prefix or suffix S3 reserves"
    return None


def port(value: int) -> str | None:
    if not 1 <= value <= 65535:
        return f"{value} is not a port (1 to 65535)"
    return None


def host_port(value: str) -> str | None:
    """host[:port] as Docker reads a registry: a DNS name, an IPv4 or [IPv6] address, localhost."""
    host, _, port_text = value.rpartition(":") if re.search(r":[0-9]*$", value) else (value, "", "")
    if port_text or value.endswith(":"):
        if not port_text.isdigit() or port(int(port_text)):
            return f"{value!r} has no valid port after ':' (1 to 65535)"
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
            return None
        except ValueError:
            return f"{value!r} is not a host[:port]"
    if not HOSTNAME.match(host.lower()):
        return f"{value!r} is not a host[:port] (like ghcr.io or 127.0.0.1:5000)"
    if "." not in host and host != "localhost" and not port_text:
        return f"{value!r} has no '.' or ':port', so Docker would read it as a Docker Hub namespace (use e.g. docker.io)"
    return None


def docker_path(value: str) -> str | None:
    if not DOCKER_PATH.match(value):
        return f"{value!r} is not a Docker repository path (lowercase letters and digits, separated by '.', '_', '-' or '/')"
    return None


def dns_name(value: str) -> str | None:
    if value and (len(value) > 253 or not HOSTNAME.match(value)):
        return f"{value!r} is not a DNS name (lowercase, like sodam.store)"
    return None


def https_url(value: str) -> str | None:
    """An https:// URL with a host (and an optional port and path), as webhook receivers need."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
        parsed_port = parts.port
    except ValueError:
        parts, parsed_port = None, None
    if parts is None or parts.scheme != "https" or not parts.hostname or any(c.isspace() for c in value):
        return f"{value!r} is not an https:// URL (like https://3.sodam.store/webhook/livekit)"
    if parsed_port is not None and port(parsed_port):
        return f"{value!r} has port {parsed_port}, not 1 to 65535"
    if dns_name(parts.hostname) and not _is_ip(parts.hostname):
        return f"{value!r} has host {parts.hostname!r}, which is not a DNS name or an IP address"
    return None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def git_url(value: str) -> str | None:
    """What git clone takes: scheme://…, user@host:path or a local path; never an option."""
    if not value or value != value.strip() or any(c.isspace() for c in value):
        return f"{value!r} is not a git URL (no spaces, like https://github.com/org/repo.git)"
    if value.startswith("-"):
        return f"{value!r} starts with '-'; git would read it as an option"
    scheme, sep, rest = value.partition("://")
    if sep:
        if scheme not in GIT_URL_SCHEMES:
            return f"{value!r} uses {scheme}://; git URLs are {', '.join(s + '://' for s in GIT_URL_SCHEMES)}, user@host:path or a path"
        if scheme != "file" and not rest.split("/", 1)[0]:
            return f"{value!r} has no host after {scheme}://"
    return None


def git_ref(value: str) -> str | None:
    """A branch, tag or commit name as git check-ref-format allows it."""
    if not value.strip():
        return "is empty (in CI, check that the variable you pass is set)"
    bad = (
        value.startswith(("-", "/", "."))
        or value.endswith(("/", ".", ".lock"))
        or ".." in value
        or "@{" in value
        or "//" in value
        or value == "@"
        or any(c.isspace() or ord(c) < 32 or c in "~^:?*[\\\x7f" for c in value)
    )
    if bad:
        return f"{value!r} is not a git branch, tag or commit name"
    return None


def zone_id(value: str) -> str | None:
    if value and not ZONE_ID.match(value):
        return f"{value!r} is not a Route53 hosted zone id (like Z0123456789ABCDEFGHIJ)"
    return None


def certificate_arn(value: str) -> str | None:
    if value and not ACM_ARN.match(value):
        return f"{value!r} is not an ACM certificate ARN (arn:aws:acm:REGION:ACCOUNT:certificate/ID)"
    return None


def linux_user(value: str) -> str | None:
    if not LINUX_USER.match(value):
        return f"{value!r} is not a login name (lowercase letters, digits, '_' and '-', like ubuntu)"
    return None


def platform(value: str) -> str | None:
    if not PLATFORM.match(value):
        return f"{value!r} is not a platform (os/arch, like linux/amd64 or linux/arm64)"
    return None


# The image reference grammar of github.com/distribution/reference (regexp.go), as Docker,
# containerd and compose parse it: [domain[:port]/]path[:tag][@digest].
_REF_ALNUM = r"[a-z0-9]+"
_REF_COMPONENT = rf"{_REF_ALNUM}(?:(?:[._]|__|-+){_REF_ALNUM})*"
_REF_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_REF_DOMAIN = rf"(?:{_REF_DOMAIN_PART}(?:\.{_REF_DOMAIN_PART})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_REF_TAG = r"[\w][\w.-]{0,127}"
_REF_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
IMAGE_REFERENCE = re.compile(
    rf"^(?P<name>(?:(?P<domain>{_REF_DOMAIN})/)?(?P<path>{_REF_COMPONENT}(?:/{_REF_COMPONENT})*))"
    rf"(?::(?P<tag>{_REF_TAG}))?(?:@(?P<digest>{_REF_DIGEST}))?$"
)
DIGEST_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}  # hex digits, as go-digest validates them
_NAME_MAX = 255


def image_reference(value: str) -> str | None:
    """A full image reference as Docker parses it; a digest must be whole (sha256: and 64 hex digits)."""
    if not value or any(c.isspace() for c in value):
        return f"{value!r} is not an image reference (no spaces, like livekit/livekit-server:v1.8.4)"
    name, _, digest = value.partition("@")
    algorithm, _, hex_digits = digest.partition(":")
    if digest and algorithm in DIGEST_LENGTHS and re.fullmatch(r"[0-9a-f]*", hex_digits):
        if len(hex_digits) != DIGEST_LENGTHS[algorithm]:
            return (f"{value!r} has a {algorithm} digest of {len(hex_digits)} hex digits; "
                    f"a whole one has {DIGEST_LENGTHS[algorithm]} (copy it again in full)")  # fmt: skip
    elif digest:
        return f"{value!r} has a digest that is not sha256: and 64 lowercase hex digits"
    domain_like = "/" in name and re.search(r"[.:]|^localhost$", name.split("/", 1)[0])
    path = name.split("/", 1)[1] if domain_like else name
    if path.rsplit(":", 1)[0] != path.rsplit(":", 1)[0].lower():
        return f"{value!r} has upper case in its repository name; Docker takes only lowercase there"
    match = IMAGE_REFERENCE.match(value)
    if not match:
        return (f"{value!r} is not an image reference ([registry/]path[:tag][@sha256:digest], "
                "lowercase path parts separated by '/', tags of letters, digits, '_', '.', '-')")  # fmt: skip
    if len(match.group("name")) > _NAME_MAX:
        return f"{value[:40]!r}… has a repository name longer than {_NAME_MAX} characters"
    return None


IAM_ARN = re.compile(r"^arn:(\*|aws[a-z-]*):[a-z0-9*?-]+:[a-z0-9*?-]*:([0-9*?]{1,12}|aws)?:\S+$")


def iam_resource(value: str) -> str | None:
    """A Resource of an IAM policy statement: an ARN (wildcards allowed in its parts) or '*'."""
    if value == "*" or IAM_ARN.match(value):
        return None
    return f"{value!r} is not an ARN or '*' (like arn:aws:s3:::my-bucket/* or arn:aws:bedrock:*::foundation-model/*); IAM would refuse the policy"


def iam_action_problem(value: str) -> str | None:
    """An action damso lets a host role have: service:Action, never a whole service or iam/sts."""
    service, sep, action = value.partition(":")
    if not sep and set(value) <= {"*"}:
        return f"{value!r} allows every action of every service"
    if not sep or not re.fullmatch(r"[A-Za-z0-9-*]+", service) or not re.fullmatch(r"[A-Za-z0-9*?]+", action):
        return f"{value!r} is not an IAM action (service:Action, like s3:GetObject)"
    if set(service) <= {"*"}:
        return f"{value!r} allows actions of every service"
    if "*" in service:
        return f"{value!r} has a wildcard in its service; name one service (like s3:GetObject)"
    if set(action) <= {"*", "?"}:
        return f"{value!r} allows every action of {service}"
    if service.lower() in ("iam", "sts"):
        return f"{value!r} is an iam: or sts: action, which would let a host take over the account"
    return None


def dns_label(value: str) -> str | None:
    """One label of a DNS name (a subdomain): 1 to 63 lowercase letters, digits and '-', not at either end."""
    if not re.fullmatch(DNS_LABEL, value):
        return f"{value!r} is not a DNS label (1 to 63 lowercase letters, digits and '-', not first or last; like livekit)"
    return None
