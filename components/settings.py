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

from components import constants

NAMESPACE = "companynews"
PLATFORMS = ("docker", "aws")
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


class SettingsError(ValueError):
    """Every problem in the stack's configuration at once, each naming key, value and what is allowed."""

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


def is_ip_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
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
    process_limit: int = setting(
        "processLimit", default=1024, allowed="an integer from 64 to 32768", check=between(64, 32768),
        description="RLIMIT_NPROC of each container's user: most processes and threads it may run.")


@dataclass(frozen=True)
class DockerSettings:
    """Keys only the docker platform (training) reads."""

    app_replicas: int = setting(
        "appReplicas", default=2, allowed="an integer from 1 to 5", check=between(1, 5),
        description="App containers: one writer, the rest hot standbys.")
    http_port: int = setting(
        "httpPort", default=8080, allowed="an integer from 1 to 65535", check=between(1, 65535),
        description="Host port the front door publishes.")
    bind_address: str = setting(
        "bindAddress", default="127.0.0.1", allowed="an IP address", check=is_ip_address,
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
    purge_data_on_destroy: bool = setting(
        "purgeDataOnDestroy", default=False, allowed="true or false",
        description="Delete the data volume on `pulumi destroy` (kept by default).")


@dataclass(frozen=True)
class Settings:
    stack: str
    common: CommonSettings
    docker: DockerSettings | None


SECTIONS: dict[str, type] = {"common": CommonSettings, "docker": DockerSettings}
SECTION_PLATFORMS: dict[str, tuple[str, ...]] = {"common": PLATFORMS, "docker": ("docker",)}


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
    if problems:
        raise SettingsError(stack, problems)
    return Settings(
        stack=stack,
        common=CommonSettings(**parsed["common"]),
        docker=DockerSettings(**docker_values) if docker_values is not None else None,
    )


def load_settings(stack: str) -> Settings:
    """Read the running Pulumi program's config for this project and validate it."""
    from pulumi.runtime import config as runtime_config

    raw = dict(runtime_config.get_config_env())
    raw.update(runtime_config.CONFIG.get())
    return parse_settings(raw, stack)
