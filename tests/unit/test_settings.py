"""Configuration: every key checked for type and range before any resource is declared, one error listing
every bad key, and Pulumi.yaml's schema in agreement with components/settings.py."""
from __future__ import annotations

import ipaddress

import pytest
import yaml
from hypothesis import given, settings as hypothesis_settings, strategies as st

from components.settings import REQUIRED, SECTIONS, SettingsError, all_rules, parse_settings, rules
from tests.program import REPO_ROOT

VALID_TRAINING = {"statsPassword": "a-valid-stats-password"}

# One refused value per key. A new key needs a row here: the test below names any key without one.
BAD_VALUES = {
    "platform": "kubernetes", "hostname": "Not A Host", "warUrl": "ftp://x y", "warSha256": "abc",
    "staticUrl": "two words", "staticSha256": "G" * 64, "artifactMaxBytes": "12", "baseImage": "UPPER CASE",
    "staticReplicas": "0", "postRatePerMinute": "-1", "postBurst": "many", "postAllowCidrs": "10.0.0.0/33",
    "clientMaxBody": "1g", "microcacheSeconds": "5", "appMemoryMb": "128", "staticMemoryMb": "8",
    "proxyMemoryMb": "1", "processLimit": "10", "dataFreeFloorKib": "-1", "appReplicas": "6", "httpPort": "65536",
    "bindAddress": "localhost", "statsPort": "0", "statsPassword": "short", "dockerSubnet": "10.0.0.0/8",
    "postHoldSeconds": "61", "purgeDataOnDestroy": "yes", "proxyNetworkMode": "overlay",
    "region": "us-east", "azCount": "1", "vpcCidr": "10.40.0.0/24", "natPerAz": "sometimes",
    "instanceType": "m7g.large", "minInstances": "1", "maxInstances": "51", "staticMinTasks": "1",
    "staticMaxTasks": "101", "certificateArn": "arn:aws:iam::123456789012:server-certificate/x",
    "domainName": "Example.COM", "hostedZoneId": "zone-1", "accessLogsBucket": "Bucket_Name",
    "logRetentionDays": "31", "alarmEmail": "ops-at-example.com", "healthCheckGraceSeconds": "100",
    "appStopTimeoutSeconds": "600", "allowPlainHttp": "maybe", "albDeletionProtection": "off",
    "ecrKeepImages": "0", "cdn": "on",
    "cdnCertificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/12345678-1234-1234-1234-123456789012",
    "cdnPriceClass": "PriceClass_50", "waf": "off", "wafPostRateLimit": "9",
}


def platform_of(key: str) -> str:
    for name, section in SECTIONS.items():
        if any(rule.key == key for _, rule, _ in rules(section)):
            return "aws" if name == "aws" else "docker"
    raise KeyError(key)


def test_every_key_has_a_refused_example():
    missing = sorted({rule.key for rule in all_rules()} - set(BAD_VALUES))
    assert not missing, f"add a refused value for {missing} to BAD_VALUES"


@pytest.mark.parametrize("key", sorted(BAD_VALUES))
def test_each_key_refuses_a_bad_value_naming_key_value_and_what_is_allowed(key):
    if key not in {rule.key for rule in all_rules()}:
        pytest.fail(f"BAD_VALUES names {key}, which settings.py does not know")
    config = {**VALID_TRAINING, "platform": platform_of(key), key: BAD_VALUES[key]}
    with pytest.raises(SettingsError) as refused:
        parse_settings(config, "training")
    (problem,) = [p for p in refused.value.problems if f"companynews:{key} " in p]
    assert "must be" in problem, problem
    secret = next(rule for rule in all_rules() if rule.key == key).secret
    assert (BAD_VALUES[key] not in problem) if secret else (repr(BAD_VALUES[key]) in problem), problem


def test_one_error_lists_every_bad_key():
    config = {"appReplicas": "0", "httpPort": "x", "bindAddress": "nowhere", "typoKey": "1"}
    with pytest.raises(SettingsError) as refused:
        parse_settings(config, "training")
    text = str(refused.value)
    for key in ("appReplicas", "httpPort", "bindAddress", "typoKey", "statsPassword"):
        assert f"companynews:{key}" in text, f"{key} missing from:\n{text}"
    assert len(refused.value.problems) == 5


def test_defaults_make_a_valid_training_stack():
    settings = parse_settings(VALID_TRAINING, "training")
    assert settings.docker.app_replicas == 2 and settings.docker.bind_address == "127.0.0.1"


def test_pulumi_yaml_schema_agrees_with_settings():
    schema = yaml.safe_load((REPO_ROOT / "Pulumi.yaml").read_text())["config"]
    kinds = {int: "integer", bool: "boolean", str: "string", tuple[str, ...]: "array"}
    for section in SECTIONS.values():
        for _, rule, kind in rules(section):
            if rule.secret:
                assert rule.key not in schema, f"{rule.key} is secret: declared, the engine would demand it everywhere"
                continue
            declared = schema.get(rule.key)
            assert declared, f"Pulumi.yaml does not declare {rule.key}"
            assert declared["type"] == kinds[kind], f"{rule.key}: Pulumi.yaml says {declared['type']}"
            default = list(rule.default) if isinstance(rule.default, tuple) else rule.default
            assert rule.default is not REQUIRED and declared.get("default") == default, (
                f"{rule.key}: Pulumi.yaml default {declared.get('default')!r}, settings.py {default!r}")
            assert declared.get("description") == rule.description, f"{rule.key}: descriptions differ"
    known = {rule.key for rule in all_rules()}
    assert set(schema) <= known, f"Pulumi.yaml declares keys settings.py does not know: {set(schema) - known}"


@pytest.mark.parametrize("key", ["httpPort", "statsPort"])
def test_host_network_refuses_a_port_below_1024(key):
    """On the host's network nginx binds the port itself, without the capability a port below 1024 needs."""
    config = {**VALID_TRAINING, "proxyNetworkMode": "host", key: "80"}
    with pytest.raises(SettingsError) as refused:
        parse_settings(config, "training")
    (problem,) = refused.value.problems
    assert problem.startswith(f"companynews:{key} = 80") and "proxyNetworkMode host" in problem, problem
    assert parse_settings({**config, "proxyNetworkMode": "bridge"}, "training").docker.proxy_network_mode == "bridge"


@hypothesis_settings(max_examples=200, deadline=None)
@given(st.integers(min_value=-10, max_value=20))
def test_app_replicas_accepted_exactly_from_1_to_5(replicas):
    config = {**VALID_TRAINING, "appReplicas": str(replicas)}
    if 1 <= replicas <= 5:
        assert parse_settings(config, "training").docker.app_replicas == replicas
    else:
        with pytest.raises(SettingsError, match="appReplicas"):
            parse_settings(config, "training")


@pytest.mark.parametrize("limit, accepted", [("9", False), ("10", True), ("2000000000", True),
                                              ("2000000001", False)])
def test_waf_post_rate_limit_accepted_exactly_within_what_aws_allows(limit, accepted):
    """AWS refuses a rate-based rule's limit below 10 or above 2,000,000,000: refused here, before any deploy."""
    config = {"platform": "aws", "allowPlainHttp": "true", "wafPostRateLimit": limit}
    if accepted:
        assert parse_settings(config, "production").aws.waf_post_rate_limit == int(limit)
    else:
        with pytest.raises(SettingsError) as refused:
            parse_settings(config, "production")
        (problem,) = refused.value.problems
        assert problem == f"companynews:wafPostRateLimit = '{limit}': it must be an integer from 10 to 2000000000", problem


@hypothesis_settings(max_examples=200, deadline=None)
@given(st.one_of(st.ip_addresses().map(str), st.text(max_size=20)))
def test_bind_address_accepted_exactly_when_it_is_an_ipv4_address(address):
    """The dns_record output is an A record, so the front door binds to an IPv4 address."""
    try:
        ipaddress.IPv4Address(address)
        valid = True
    except ValueError:
        valid = False
    config = {**VALID_TRAINING, "bindAddress": address}
    if valid:
        assert parse_settings(config, "training").docker.bind_address == address
    else:
        with pytest.raises(SettingsError, match="bindAddress"):
            parse_settings(config, "training")


@hypothesis_settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(BAD_VALUES)), st.text(max_size=30), max_size=6))
def test_validator_either_accepts_or_names_every_problem_key(config):
    """Whatever is typed in, the validator answers with Settings or a SettingsError; never anything else."""
    try:
        parse_settings({**VALID_TRAINING, **config}, "training")
    except SettingsError as error:
        for problem in error.problems:
            assert problem.startswith("companynews:"), problem
