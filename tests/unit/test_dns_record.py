"""scripts/dns-record as DNS tooling runs it: stack outputs on stdin, a Route 53 change batch on stdout."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "dns-record"

TRAINING_OUTPUTS = {
    "url": "http://127.0.0.1:8080/",
    "hostname": "companynews.localhost",
    "port": 8080,
    "stats_url": "http://127.0.0.1:8404/",
    "dns_record": {"type": "A", "name": "companynews.localhost", "target": "127.0.0.1"},
}
ALB_DNS_NAME = "companynews-alb-1234567890.us-east-1.elb.amazonaws.com"
ALB_ZONE_ID = "Z35SXDOTRQ7X7K"
PRODUCTION_OUTPUTS = {
    "url": "https://news.example.com/",
    "hostname": "news.example.com",
    "alb_dns_name": ALB_DNS_NAME,
    "alb_zone_id": ALB_ZONE_ID,
    "dns_record": {"type": "ALIAS", "name": "news.example.com", "target": ALB_DNS_NAME, "zone_id": ALB_ZONE_ID},
}


def run(stdin: str | dict, *arguments: str) -> subprocess.CompletedProcess:
    text = stdin if isinstance(stdin, str) else json.dumps(stdin)
    return subprocess.run([sys.executable, str(SCRIPT), *arguments], input=text, capture_output=True, text=True,
                          timeout=30, check=False)


def batch_of(stdin: str | dict, *arguments: str) -> dict:
    result = run(stdin, *arguments)
    assert result.returncode == 0, f"dns-record {' '.join(arguments)} failed: {result.stderr}"
    return json.loads(result.stdout)


def with_record(outputs: dict, **changes) -> dict:
    return {**outputs, "dns_record": {**outputs["dns_record"], **changes}}


def test_script_is_executable():
    assert os.access(SCRIPT, os.X_OK), f"{SCRIPT} must be executable"
    assert SCRIPT.read_text().startswith("#!/usr/bin/env python3\n"), "it must run with the system python3"


def test_training_output_becomes_an_a_record_upsert():
    assert batch_of(TRAINING_OUTPUTS) == {
        "Comment": "companyNews front door: UPSERT companynews.localhost. from the dns_record output",
        "Changes": [{"Action": "UPSERT", "ResourceRecordSet": {
            "Name": "companynews.localhost.", "Type": "A", "TTL": 300,
            "ResourceRecords": [{"Value": "127.0.0.1"}]}}],
    }


def test_production_output_becomes_an_alias_to_the_load_balancer():
    (change,) = batch_of(PRODUCTION_OUTPUTS)["Changes"]
    assert change == {"Action": "UPSERT", "ResourceRecordSet": {
        "Name": "news.example.com.", "Type": "A",
        "AliasTarget": {"HostedZoneId": ALB_ZONE_ID, "DNSName": f"{ALB_DNS_NAME}.", "EvaluateTargetHealth": True}}}
    assert "TTL" not in change["ResourceRecordSet"], "Route 53 refuses a TTL on an alias record"


def test_production_output_with_cdn_becomes_an_alias_to_cloudfront_without_target_health():
    cloudfront = with_record(PRODUCTION_OUTPUTS, target="d111111abcdef8.cloudfront.net", zone_id="Z2FDTNDATAQYW2")
    (change,) = batch_of(cloudfront)["Changes"]
    assert change["ResourceRecordSet"]["AliasTarget"] == {
        "HostedZoneId": "Z2FDTNDATAQYW2", "DNSName": "d111111abcdef8.cloudfront.net.",
        "EvaluateTargetHealth": False}, "Route 53 refuses EvaluateTargetHealth on an alias to CloudFront"


def test_ttl_action_name_and_comment_options():
    batch = batch_of(TRAINING_OUTPUTS, "--ttl", "60", "--action", "delete", "--name", "news.test.",
                     "--comment", "rollback")
    assert batch["Comment"] == "rollback"
    (change,) = batch["Changes"]
    assert change["Action"] == "DELETE"
    assert change["ResourceRecordSet"]["Name"] == "news.test.", "a trailing dot must not be doubled"
    assert change["ResourceRecordSet"]["TTL"] == 60


def test_ttl_on_an_alias_is_ignored_with_a_note():
    result = run(PRODUCTION_OUTPUTS, "--ttl", "60")
    assert result.returncode == 0, result.stderr
    assert "TTL" not in json.loads(result.stdout)["Changes"][0]["ResourceRecordSet"]
    assert "--ttl 60 ignored" in result.stderr, result.stderr


def test_name_option_covers_production_without_a_domain_name():
    outputs = with_record(PRODUCTION_OUTPUTS, name=None)
    (change,) = batch_of(outputs, "--name", "news.example.com")["Changes"]
    assert change["ResourceRecordSet"]["Name"] == "news.example.com."


@pytest.mark.parametrize("stdin, words", [
    ("not json", ["stdin is not JSON"]),
    ("", ["stdin is not JSON"]),
    (["a list"], ["JSON list", "stack outputs"]),
    ({"url": "http://127.0.0.1:8080/"}, ["no `dns_record`", "url"]),
    (with_record(TRAINING_OUTPUTS, type="CNAME"), ["dns_record.type = 'CNAME'", "\"A\"", "\"ALIAS\""]),
    (with_record(PRODUCTION_OUTPUTS, name=None), ["dns_record.name = None", "companynews:domainName", "--name"]),
    (with_record(PRODUCTION_OUTPUTS, name=""), ["dns_record.name = ''", "companynews:domainName", "--name"]),
    ({"dns_record": {"type": "ALIAS", "name": "news.example.com", "target": ALB_DNS_NAME}},
     ["dns_record.zone_id = None", "alb_zone_id"]),
    (with_record(TRAINING_OUTPUTS, target="::1"), ["dns_record.target = '::1'", "IPv4"]),
], ids=["not-json", "empty", "not-an-object", "no-dns-record", "unknown-type", "null-name", "empty-name",
        "alias-without-zone-id", "ipv6-in-an-a-record"])
def test_unusable_input_fails_with_a_message_naming_the_field(stdin, words):
    result = run(stdin if isinstance(stdin, str) else json.dumps(stdin))
    assert result.returncode == 2, f"exit {result.returncode}, stdout {result.stdout!r}"
    assert result.stdout == "", "nothing may reach stdout when the batch cannot be made"
    assert result.stderr.startswith("dns-record: "), result.stderr
    for word in words:
        assert word in result.stderr, f"{word!r} missing from: {result.stderr}"


@pytest.mark.parametrize("arguments, words", [
    (["--action", "REPLACE"], ["--action", "REPLACE"]),
    (["--ttl", "-1"], ["--ttl -1", "0 to"]),
    (["--ttl", "soon"], ["--ttl", "soon"]),
    (["--name", "."], ["--name '.'"]),
])
def test_bad_options_fail_with_exit_status_2(arguments, words):
    result = run(TRAINING_OUTPUTS, *arguments)
    assert result.returncode == 2, f"exit {result.returncode}: {result.stdout}"
    for word in words:
        assert word in result.stderr, f"{word!r} missing from: {result.stderr}"
