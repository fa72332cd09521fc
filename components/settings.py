"""The stack's configuration, parsed and validated once, before any resource is declared.

Each setting is a dataclass field that carries its config key, default, rule and description, so the
parser, the error messages and the check against Pulumi.yaml's schema all read the same table.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import pulumi

from components import constants

NAMESPACE = "companynews"
PLATFORMS = ("docker", "aws")
PROXY_NETWORK_MODES = ("bridge", "host")
# Below this a process needs CAP_NET_BIND_SERVICE to listen, and the proxy runs without capabilities.
FIRST_UNPRIVILEGED_PORT = 1024
REQUIRED: Any = object()  # sentinel: the key has no default and must be set


@dataclass(frozen=True)
class Rule:
    key: str
    default: Any
    allowed: str  # what is allowed, in words, for the error message
    check: Callable[[Any], bool]
    description: str
    secret: bool = False


def setting(key: str, *, default: Any = REQUIRED, allowed: str, check: Callable[[Any], bool] = lambda _: True,
            description: str, secret: bool = False) -> Any:
    return field(metadata={"rule": Rule(key, default, allowed, check, description, secret)}, repr=not secret)


class SettingsError(pulumi.RunError, ValueError):
    """Every problem in the stack's configuration at once, each naming key, value and what is allowed.

    A pulumi.RunError, which the Python language host prints as its message alone, without the traceback
    it prints for any other exception (pulumi/errors.py, RunError; tests/replay prints it the same way)."""

    def __init__(self, stack: str, problems: list[str]):
        self.problems = problems
        listing = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(
            f"Stack '{stack}' has {len(problems)} invalid configuration value(s); nothing was changed:\n{listing}\n"
            f"Fix them with `pulumi config set --stack {stack} {NAMESPACE}:<key> <value>`."
        )


# --- rules --------------------------------------------------------------------------------------------

def between(low: int, high: int) -> Callable[[int], bool]:
    return lambda value: low <= value <= high


def is_ipv4_address(value: str) -> bool:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return True


def is_ipv4_network(value: str, *, smallest_prefix: int = 8, largest_prefix: int = 32) -> bool:
    try:
        network = ipaddress.IPv4Network(value, strict=True)
    except ValueError:
        return False
    return smallest_prefix <= network.prefixlen <= largest_prefix


def are_networks(values: tuple[str, ...]) -> bool:
    try:
        for value in values:
            ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
IMAGE_REFERENCE = re.compile(r"^[a-z0-9]+([._/:@-][a-zA-Z0-9_.-]+)*$")
NGINX_SIZE = re.compile(r"^[1-9][0-9]{0,5}[km]?$")
ARTIFACT_URL = re.compile(r"^(https?://[^\s]+|file://[^\s]+|[^\s:]+)$")


def is_hostname(value: str) -> bool:
    return bool(HOSTNAME.match(value))


def is_sha256_or_empty(value: str) -> bool:
    return value == "" or bool(SHA256.match(value))


AWS_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-[1-9]$")
ACM_CERTIFICATE_ARN = re.compile(
    r"^arn:aws(-cn|-us-gov)?:acm:(?P<region>[a-z]{2}(-gov)?-[a-z]+-[1-9]):[0-9]{12}:certificate/"
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
HOSTED_ZONE_ID = re.compile(r"^Z[0-9A-Z]{1,31}$")
S3_BUCKET = re.compile(r"^(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-zA-Z]{2,}$")
# family, generation, attribute letters, size: t3.medium, m7i-flex.large, c6gn.xlarge.
INSTANCE_TYPE = re.compile(r"^(?P<family>[a-z]+)(?P<generation>[0-9]+)(?P<attributes>[a-z-]*)\.(?P<size>[a-z0-9]+)$")
# The values CloudWatch Logs accepts for a log group's retention (0, never expire, is left out on purpose).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
                      2922, 3288, 3653)

# AWS WAF in front of production (components/web_firewall.py): refuse, only count, or no web ACL at all.
WAF_MODES = ("block", "count", "disabled")
# A rate-based rule's limit: "The lowest limit setting allowed is 10" (AWS WAF Developer Guide,
# waf-rule-statement-type-rate-based-high-level-settings.html); the API's RateLimit shape allows 10 to
# 2,000,000,000 (botocore data/wafv2/2019-07-29/service-2.json).
WAF_RATE_LIMIT_MIN = 10
WAF_RATE_LIMIT_MAX = 2_000_000_000

def is_x86_instance_type(value: str) -> bool:
    """The AMI and the images are x86_64: Graviton types (a1, or a 'g' after the generation) cannot run them."""
    match = INSTANCE_TYPE.match(value)
    return bool(match) and match["family"] != "a" and "g" not in match["attributes"]


def empty_or(pattern: re.Pattern) -> Callable[[str], bool]:
    return lambda value: value == "" or bool(pattern.match(value))


def empty_or_hostname(value: str) -> bool:
    return value == "" or is_hostname(value)


# CloudFront reads viewer certificates from ACM in us-east-1 only, whatever region the stack is in.
CLOUDFRONT_CERTIFICATE_REGION = "us-east-1"
CDN_PRICE_CLASSES = ("PriceClass_100", "PriceClass_200", "PriceClass_All")


def empty_or_cloudfront_certificate(value: str) -> bool:
    match = ACM_CERTIFICATE_ARN.match(value)
    return value == "" or (bool(match) and value.startswith("arn:aws:acm:")
                           and match["region"] == CLOUDFRONT_CERTIFICATE_REGION)


# --- the settings -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CommonSettings:
    """Keys every platform reads."""

    platform: str = setting(
        "platform", default="docker", allowed="one of docker, aws", check=lambda v: v in PLATFORMS,
        description="Where the stack runs: docker (a local Docker host) or aws (ECS on EC2).")
    hostname: str = setting(
        "hostname", default="companynews.localhost", allowed="a lower-case DNS name", check=is_hostname,
        description="The public host name; the dns_record output names it.")
    war_url: str = setting(
        "warUrl", default=constants.DEFAULT_WAR_URL, allowed="an https://, http:// or file:// URL or a path",
        check=lambda v: bool(ARTIFACT_URL.match(v)), description="Where companyNews.war is fetched from.")
    war_sha256: str = setting(
        "warSha256", default="", allowed="empty or 64 lower-case hex digits", check=is_sha256_or_empty,
        description="Optional SHA-256 pin of the war; a download that differs is refused.")
    static_url: str = setting(
        "staticUrl", default=constants.DEFAULT_STATIC_URL, allowed="an https://, http:// or file:// URL or a path",
        check=lambda v: bool(ARTIFACT_URL.match(v)), description="Where static.zip is fetched from.")
    static_sha256: str = setting(
        "staticSha256", default="", allowed="empty or 64 lower-case hex digits", check=is_sha256_or_empty,
        description="Optional SHA-256 pin of the static archive.")
    artifact_max_bytes: int = setting(
        "artifactMaxBytes", default=200 * 1024 * 1024, allowed="an integer from 1024 to 2147483648",
        check=between(1024, 2 ** 31), description="Largest artifact download accepted, in bytes.")
    base_image: str = setting(
        "baseImage", default=constants.DEFAULT_BASE_IMAGE, allowed="a Docker image reference",
        check=lambda v: bool(IMAGE_REFERENCE.match(v)),
        description="Base image of every build (tests use a local debootstrap image).")
    static_replicas: int = setting(
        "staticReplicas", default=2, allowed="an integer from 1 to 20", check=between(1, 20),
        description="nginx replicas (containers or ECS tasks) serving the static files.")
    post_rate_per_minute: int = setting(
        "postRatePerMinute", default=60, allowed="an integer from 1 to 100000", check=between(1, 100_000),
        description="Posts per minute one client may send before getting 429.")
    post_burst: int = setting(
        "postBurst", default=20, allowed="an integer from 0 to 10000", check=between(0, 10_000),
        description="Posts a client may send above the rate before being limited.")
    post_allow_cidrs: tuple[str, ...] = setting(
        "postAllowCidrs", default=(), allowed="a list of CIDR networks", check=are_networks,
        description="If set, only these networks may post; empty allows everyone.")
    client_max_body: str = setting(
        "clientMaxBody", default="64k", allowed="an nginx size such as 64k or 1m", check=lambda v: bool(
            NGINX_SIZE.match(v)), description="Largest request body the front door accepts (larger gets 413).")
    microcache_seconds: int = setting(
        "microcacheSeconds", default=1, allowed="0 or 1", check=between(0, 1),
        description="How long the front door may cache a dynamic GET (0 turns micro-caching off).")
    app_memory_mb: int = setting(
        "appMemoryMb", default=768, allowed="an integer from 256 to 16384", check=between(256, 16384),
        description="Memory limit of each app container/task; the JVM heap is sized from it.")
    static_memory_mb: int = setting(
        "staticMemoryMb", default=64, allowed="an integer from 16 to 4096", check=between(16, 4096),
        description="Memory limit of each static container/task.")
    proxy_memory_mb: int = setting(
        "proxyMemoryMb", default=256, allowed="an integer from 64 to 8192", check=between(64, 8192),
        description="Memory limit of the proxy container (its cache lives in a tmpfs within it).")
    data_free_floor_kib: int = setting(
        "dataFreeFloorKib", default=65536, allowed="an integer from 0 to 104857600 (100 GiB)",
        check=between(0, 100 * 1024 * 1024),
        description="Free space (KiB) the data volume must keep: below it the writer turns unhealthy and the front "
                    "door answers posts with 503 before a full journal blocks them (0: only a blocked journal).")
    process_limit: int = setting(
        "processLimit", default=1024, allowed="an integer from 64 to 32768", check=between(64, 32768),
        description="RLIMIT_NPROC of each container's user: most processes and threads it may run.")


@dataclass(frozen=True)
class DockerSettings:
    """Keys only the docker platform (training) reads."""

    app_replicas: int = setting(
        "appReplicas", default=2, allowed=f"an integer from 1 to {constants.MAX_APP_REPLICAS}",
        check=between(1, constants.MAX_APP_REPLICAS),
        description="App containers: one writer, the rest hot standbys.")
    http_port: int = setting(
        "httpPort", default=8080, allowed="an integer from 1 to 65535", check=between(1, 65535),
        description="Host port the front door publishes.")
    bind_address: str = setting(
        "bindAddress", default="127.0.0.1", allowed="an IPv4 address", check=is_ipv4_address,
        description="Host address the front door publishes on (0.0.0.0 exposes it to the network).")
    stats_port: int = setting(
        "statsPort", default=8404, allowed="an integer from 1 to 65535", check=between(1, 65535),
        description="Host port of the password-protected stats page, always on 127.0.0.1.")
    stats_password: str = setting(
        "statsPassword", allowed="a secret of at least 12 characters", check=lambda v: len(v) >= 12,
        secret=True, description="Password of the stats page (user 'stats'); set it with --secret.")
    docker_subnet: str = setting(
        "dockerSubnet", default="172.30.81.0/24", allowed="an IPv4 network from /16 to /26",
        check=lambda v: is_ipv4_network(v, smallest_prefix=16, largest_prefix=26),
        description="Subnet of the stack's Docker network; containers get fixed addresses in it.")
    post_hold_seconds: int = setting(
        "postHoldSeconds", default=10, allowed="an integer from 0 to 60", check=between(0, 60),
        description="Seconds the front door holds a post that arrives while no app writer listens (a failover), "
                    "delivering it to the new writer as soon as one listens; then the 503 page. 0: no hold.")
    purge_data_on_destroy: bool = setting(
        "purgeDataOnDestroy", default=False, allowed="true or false",
        description="`make down` also deletes the data volume (read when make down runs; `pulumi destroy` itself always keeps it, and `make purge` deletes it whatever this says).")
    proxy_network_mode: str = setting(
        "proxyNetworkMode", default="bridge", allowed=f"one of {', '.join(PROXY_NETWORK_MODES)}",
        check=lambda v: v in PROXY_NETWORK_MODES,
        description="bridge: Docker publishes the front door's ports; host: the front door joins the host's "
                    "network and listens on bindAddress:httpPort itself, twice the throughput for local clients "
                    "but less isolation (docs/benchmarks.md).")


@dataclass(frozen=True)
class AwsSettings:
    """Keys only the aws platform (production) reads."""

    region: str = setting(
        "region", default="us-east-1", allowed="an AWS region such as us-east-1", check=lambda v: bool(
            AWS_REGION.match(v)), description="AWS region of every resource (must equal aws:region when that is set).")
    az_count: int = setting(
        "azCount", default=2, allowed="an integer from 2 to 6", check=between(2, 6),
        description="Availability zones the VPC spans: a public and a private subnet in each.")
    vpc_cidr: str = setting(
        "vpcCidr", default="10.40.0.0/16", allowed="an IPv4 network from /16 to /22",
        check=lambda v: is_ipv4_network(v, smallest_prefix=16, largest_prefix=22),
        description="The VPC's network; it is cut into 16 equal subnets (an ALB subnet needs at least a /27).")
    nat_per_az: bool = setting(
        "natPerAz", default=False, allowed="true or false",
        description="One NAT gateway per zone (survives a zone outage) instead of one shared (cheaper).")
    instance_type: str = setting(
        "instanceType", default="t3.medium", allowed="an x86_64 EC2 instance type such as t3.medium",
        check=is_x86_instance_type, description="EC2 instance type of the ECS container instances.")
    min_instances: int = setting(
        "minInstances", default=2, allowed="an integer from 2 to 50, at most maxInstances", check=between(2, 50),
        description="Fewest container instances, spread over the zones (two keep a zone outage survivable).")
    max_instances: int = setting(
        "maxInstances", default=6, allowed="an integer from 2 to 50, at least minInstances", check=between(2, 50),
        description="Most container instances the capacity provider may scale out to.")
    static_min_tasks: int = setting(
        "staticMinTasks", default=2, allowed="an integer from 2 to 50, at most staticMaxTasks", check=between(2, 50),
        description="Fewest nginx tasks the static tier scales in to.")
    static_max_tasks: int = setting(
        "staticMaxTasks", default=10, allowed="an integer from 2 to 100, at least staticMinTasks",
        check=between(2, 100), description="Most nginx tasks the static tier scales out to.")
    certificate_arn: str = setting(
        "certificateArn", default="", allowed="empty or an ACM certificate ARN in the stack's region",
        check=empty_or(ACM_CERTIFICATE_ARN),
        description="ACM certificate for HTTPS on the load balancer; empty serves plain HTTP only, which "
                    "allowPlainHttp must then allow.")
    allow_plain_http: bool = setting(
        "allowPlainHttp", default=False, allowed="true or false",
        description="Allow a stack without certificateArn: the load balancer then serves plain HTTP (with cdn, "
                    "only the leg inside the VPC is plain). Refused together with certificateArn.")
    alb_deletion_protection: bool = setting(
        "albDeletionProtection", default=True, allowed="true or false",
        description="Deletion protection on the load balancer: `pulumi destroy` and a replacement stop at it "
                    "until this is set to false and applied.")
    domain_name: str = setting(
        "domainName", default="", allowed="empty or a lower-case DNS name", check=empty_or_hostname,
        description="Public name of the site; the dns_record output names it.")
    hosted_zone_id: str = setting(
        "hostedZoneId", default="", allowed="empty or a Route 53 hosted zone id such as Z0123456789ABC",
        check=empty_or(HOSTED_ZONE_ID),
        description="Route 53 zone in which to create domainName's alias record; empty leaves DNS to you.")
    access_logs_bucket: str = setting(
        "accessLogsBucket", default="", allowed="empty or an S3 bucket name", check=empty_or(S3_BUCKET),
        description="S3 bucket for the load balancer's access logs; empty turns them off.")
    log_retention_days: int = setting(
        "logRetentionDays", default=30, allowed=f"one of {', '.join(map(str, LOG_RETENTION_DAYS))}",
        check=lambda v: v in LOG_RETENTION_DAYS, description="Days CloudWatch keeps the containers' logs.")
    alarm_email: str = setting(
        "alarmEmail", default="", allowed="empty or an email address", check=empty_or(EMAIL),
        description="Where alarms are mailed (an SNS subscription to confirm); empty sends them nowhere.")
    health_check_grace_seconds: int = setting(
        "healthCheckGraceSeconds", default=150, allowed="an integer from 120 to 300", check=between(120, 300),
        description="Seconds a new app task has to win the writer lock and start Jetty before failed health "
                    "checks count; at least the EFS lock lease (90 s) plus two healthy checks (docs/single-writer.md).")
    app_stop_timeout_seconds: int = setting(
        "appStopTimeoutSeconds", default=60, allowed="an integer from 10 to 120", check=between(10, 120),
        description="Seconds the app gets after SIGTERM to close its journal before it is killed.")
    ecr_keep_images: int = setting(
        "ecrKeepImages", default=10, allowed="an integer from 1 to 1000", check=between(1, 1000),
        description="Images each ECR repository keeps; older ones expire.")
    cdn: bool = setting(
        "cdn", default=False, allowed="true or false",
        description="Put a CloudFront distribution in front of the load balancer: static files cached at the edge, "
                    "pages for a second and served stale while the app fails over.")
    cdn_certificate_arn: str = setting(
        "cdnCertificateArn", default="", allowed="empty or an ACM certificate ARN in us-east-1",
        check=empty_or_cloudfront_certificate,
        description="ACM certificate in us-east-1 for domainName on CloudFront (cdn); empty serves only the "
                    "distribution's own *.cloudfront.net name.")
    cdn_price_class: str = setting(
        "cdnPriceClass", default="PriceClass_100", allowed=f"one of {', '.join(CDN_PRICE_CLASSES)}",
        check=lambda v: v in CDN_PRICE_CLASSES,
        description="CloudFront edge locations the CDN uses; PriceClass_100 (North America, Europe) costs least.")
    waf: str = setting(
        "waf", default="block", allowed=f"one of {', '.join(WAF_MODES)}", check=lambda v: v in WAF_MODES,
        description="AWS WAF on the load balancer (and on CloudFront with cdn): block refuses every request outside "
                    "the app's own surface and what AWS's managed rules catch; count only counts them (to try a "
                    "change); disabled declares no web ACL.")
    waf_post_rate_limit: int = setting(
        "wafPostRateLimit", default=300, allowed=f"an integer from {WAF_RATE_LIMIT_MIN} to {WAF_RATE_LIMIT_MAX}",
        check=between(WAF_RATE_LIMIT_MIN, WAF_RATE_LIMIT_MAX),
        description="Requests to /Post.action (form and post alike) one address may send in 5 minutes before WAF "
                    "answers 429; 300 is the front door's 60 posts a minute.")


@dataclass(frozen=True)
class Settings:
    stack: str
    common: CommonSettings
    docker: DockerSettings | None
    aws: AwsSettings | None


SECTIONS: dict[str, type] = {"common": CommonSettings, "docker": DockerSettings, "aws": AwsSettings}
SECTION_PLATFORMS: dict[str, tuple[str, ...]] = {"common": PLATFORMS, "docker": ("docker",), "aws": ("aws",)}


def rules(section: type) -> list[tuple[dataclasses.Field, Rule, Any]]:
    """(field, rule, python type) for every setting of one section."""
    hints = typing.get_type_hints(section)
    return [(f, f.metadata["rule"], hints[f.name]) for f in dataclasses.fields(section)]


def all_rules() -> list[Rule]:
    return [rule for section in SECTIONS.values() for _, rule, _ in rules(section)]


# --- parsing ------------------------------------------------------------------------------------------

def _convert(raw: Any, kind: Any) -> Any:
    """Turn a config value (a string, as Pulumi stores it) into the field's type; ValueError if it can't."""
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        if str(raw) in ("true", "True"):
            return True
        if str(raw) in ("false", "False"):
            return False
        raise ValueError("not a boolean")
    if kind is int:
        if isinstance(raw, bool):
            raise ValueError("not an integer")
        if isinstance(raw, int):
            return raw
        if not re.fullmatch(r"-?[0-9]+", str(raw).strip()):
            raise ValueError("not an integer")
        return int(str(raw))
    if kind == tuple[str, ...]:
        if isinstance(raw, (list, tuple)):
            items = list(raw)
        else:
            text = str(raw).strip()
            items = json.loads(text) if text.startswith("[") else [p for p in re.split(r"[,\s]+", text) if p]
        if not all(isinstance(item, str) for item in items):
            raise ValueError("not a list of strings")
        return tuple(items)
    if kind in (str, str | None, typing.Optional[str]):
        if not isinstance(raw, str):
            raise ValueError("not a string")
        return raw
    raise TypeError(f"no conversion for {kind}")


def _display(rule: Rule, raw: Any) -> str:
    return "[secret]" if rule.secret else repr(raw)


def parse_settings(raw_config: Mapping[str, Any], stack: str) -> Settings:
    """Validate a stack's config (keys with or without the `companynews:` prefix) and build Settings.

    Raises SettingsError listing every unknown key and every bad value; nothing else has happened yet.
    """
    config = {key.split(":", 1)[1] if key.startswith(f"{NAMESPACE}:") else key: value
              for key, value in raw_config.items() if ":" not in key or key.startswith(f"{NAMESPACE}:")}
    problems: list[str] = []
    known = {rule.key for rule in all_rules()}
    for key in sorted(set(config) - known):
        problems.append(f"{NAMESPACE}:{key} = {config[key]!r}: unknown key; known keys are {', '.join(sorted(known))}")

    platform = config.get("platform", CommonSettings.__dataclass_fields__["platform"].metadata["rule"].default)
    parsed: dict[str, Any] = {}
    for section_name, section in SECTIONS.items():
        if platform in PLATFORMS and platform not in SECTION_PLATFORMS[section_name]:
            parsed[section_name] = None
            continue
        values: dict[str, Any] = {}
        for fld, rule, kind in rules(section):
            raw = config.get(rule.key)
            if raw is None:
                if rule.default is REQUIRED:
                    problems.append(f"{NAMESPACE}:{rule.key} is not set: it must be {rule.allowed} "
                                    f"({rule.description})")
                    continue
                values[fld.name] = rule.default
                continue
            try:
                value = _convert(raw, kind)
            except ValueError as error:
                problems.append(f"{NAMESPACE}:{rule.key} = {_display(rule, raw)}: {error}; it must be {rule.allowed}")
                continue
            if not rule.check(value):
                problems.append(f"{NAMESPACE}:{rule.key} = {_display(rule, raw)}: it must be {rule.allowed}")
                continue
            values[fld.name] = value
        parsed[section_name] = values

    docker_values = parsed.get("docker")
    if docker_values and {"http_port", "stats_port"} <= docker_values.keys():
        if docker_values["http_port"] == docker_values["stats_port"]:
            problems.append(f"{NAMESPACE}:statsPort = {docker_values['stats_port']}: it must differ from "
                            f"httpPort ({docker_values['http_port']})")
    if docker_values and docker_values.get("proxy_network_mode") == "host":
        for key, name in (("httpPort", "http_port"), ("statsPort", "stats_port")):
            if docker_values.get(name, FIRST_UNPRIVILEGED_PORT) < FIRST_UNPRIVILEGED_PORT:
                problems.append(f"{NAMESPACE}:{key} = {docker_values[name]}: with proxyNetworkMode host it must be "
                                f"from {FIRST_UNPRIVILEGED_PORT} to 65535, since nginx then listens on it itself, "
                                f"without the capability a lower port needs (or use proxyNetworkMode bridge)")
    aws_values = parsed.get("aws")
    if aws_values is not None:
        problems.extend(_aws_problems(aws_values, parsed["common"], raw_config.get("aws:region")))
    if problems:
        raise SettingsError(stack, problems)
    return Settings(
        stack=stack,
        common=CommonSettings(**parsed["common"]),
        docker=DockerSettings(**docker_values) if docker_values is not None else None,
        aws=AwsSettings(**aws_values) if aws_values is not None else None,
    )


def _aws_problems(aws: dict[str, Any], common: dict[str, Any], provider_region: Any) -> list[str]:
    """Rules between aws keys; a key that already failed on its own is not judged again here."""
    problems = []

    def both(*names: str) -> bool:
        return all(name in aws for name in names)

    if both("min_instances", "max_instances") and aws["min_instances"] > aws["max_instances"]:
        problems.append(f"{NAMESPACE}:minInstances = {aws['min_instances']}: it must be at most maxInstances "
                        f"({aws['max_instances']})")
    if both("static_min_tasks", "static_max_tasks"):
        low, high = aws["static_min_tasks"], aws["static_max_tasks"]
        if low > high:
            problems.append(f"{NAMESPACE}:staticMinTasks = {low}: it must be at most staticMaxTasks ({high})")
        elif "static_replicas" in common and not low <= common["static_replicas"] <= high:
            problems.append(f"{NAMESPACE}:staticReplicas = {common['static_replicas']}: on aws it is the static "
                            f"tier's starting task count and must be from staticMinTasks ({low}) to "
                            f"staticMaxTasks ({high})")
    if aws.get("hosted_zone_id") and "domain_name" in aws and not aws["domain_name"]:
        problems.append(f"{NAMESPACE}:hostedZoneId = {aws['hosted_zone_id']!r}: it must be empty unless domainName "
                        f"is set (the zone gets domainName's alias record)")
    if aws.get("certificate_arn") and "domain_name" in aws and not aws["domain_name"]:
        problems.append(f"{NAMESPACE}:certificateArn = {aws['certificate_arn']!r}: it must be empty unless "
                        f"domainName is set (the certificate names a domain; the load balancer's own name is not "
                        f"on it)")
    if aws.get("certificate_arn") and "region" in aws:
        certificate_region = ACM_CERTIFICATE_ARN.match(aws["certificate_arn"])["region"]
        if certificate_region != aws["region"]:
            problems.append(f"{NAMESPACE}:certificateArn = {aws['certificate_arn']!r}: it must be a certificate in "
                            f"region {aws['region']}, where the load balancer is (it is in {certificate_region})")
    if "certificate_arn" in aws and "allow_plain_http" in aws:
        if not aws["certificate_arn"] and not aws["allow_plain_http"]:
            problems.append(f"{NAMESPACE}:certificateArn = '': it must be an ACM certificate ARN, or allowPlainHttp "
                            f"must be true to serve the site over plain HTTP on purpose")
        elif aws["certificate_arn"] and aws["allow_plain_http"]:
            problems.append(f"{NAMESPACE}:allowPlainHttp = True: it must be false when certificateArn is set "
                            f"(with a certificate, HTTP only redirects to HTTPS)")
    if aws.get("cdn_certificate_arn") and aws.get("cdn") is False:
        problems.append(f"{NAMESPACE}:cdnCertificateArn = {aws['cdn_certificate_arn']!r}: it must be empty unless cdn "
                        f"is true (only the CloudFront distribution uses it)")
    elif aws.get("cdn_certificate_arn") and "domain_name" in aws and not aws["domain_name"]:
        problems.append(f"{NAMESPACE}:cdnCertificateArn = {aws['cdn_certificate_arn']!r}: it must be empty unless "
                        f"domainName is set (the certificate names the domain CloudFront serves)")
    if aws.get("cdn") and aws.get("domain_name") and aws.get("cdn_certificate_arn") == "":
        problems.append(f"{NAMESPACE}:cdnCertificateArn = '': with cdn true and domainName {aws['domain_name']!r} it "
                        f"must be an ACM certificate in us-east-1 for that name (CloudFront answers to a name only "
                        f"with a certificate for it, and the alias record points the name at CloudFront)")
    if provider_region not in (None, "") and "region" in aws and provider_region != aws["region"]:
        problems.append(f"{NAMESPACE}:region = {aws['region']!r}: it must equal aws:region ({provider_region!r}), "
                        f"or the two would disagree about where resources go")
    return problems


def load_settings(stack: str) -> Settings:
    """Read the running Pulumi program's config for this project and validate it."""
    from pulumi.runtime import config as runtime_config

    raw = dict(runtime_config.get_config_env())
    raw.update(runtime_config.CONFIG.get())
    return parse_settings(raw, stack)
