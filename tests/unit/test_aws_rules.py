"""AWS's own rules for names, descriptions and tags, which the mock runtime does not enforce: every value the
production stack declares is checked against the character set and length AWS documents for it, one table row
per rule with the page it comes from. A value that breaks one is what `pulumi up` would see refused."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import pytest

from tests.unit.mocks import RecordingMocks

CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012"
# Every optional part on, so every resource the program can declare is checked.
EVERYTHING_ON = {"domainName": "news.example.com", "certificateArn": CERTIFICATE, "hostedZoneId": "Z0123456789ABC",
                 "alarmEmail": "ops@example.com", "accessLogsBucket": "companynews-alb-logs", "cdn": "true",
                 "cdnCertificateArn": CERTIFICATE, "allowPlainHttp": "false"}
# Pulumi autonames a resource without an explicit name as its logical name, a hyphen and 7 random characters
# (https://www.pulumi.com/docs/iac/concepts/resources/names/#autonaming); the check assumes the whole suffix.
AUTONAME_SUFFIX = "-abcdefg"
# The EC2 set for security group names and descriptions and for rule descriptions.
EC2_TEXT = r"[a-zA-Z0-9 ._\-:/()#,@\[\]+=&;{}!$*]"
# Tag keys and values: letters, numbers, spaces and _ . : / = + - @ (Unicode letters allowed).
TAG_TEXT = r"[\w\s.:/=+\-@]"


@dataclass(frozen=True)
class AwsRule:
    resource_type: str
    field: str                  # an input name; "name" falls back to the autoname when unset
    pattern: str                # the whole value must match
    max_length: int
    source: str                 # the AWS documentation page the rule is read from
    min_length: int = 0

    def problem(self, value: str) -> str | None:
        if not self.min_length <= len(value) <= self.max_length:
            return f"{len(value)} characters, allowed {self.min_length} to {self.max_length}"
        if not re.fullmatch(self.pattern, value):
            bad = sorted({char for char in value if not re.fullmatch(self.pattern, char)})
            return f"does not match {self.pattern}" + (f" (characters {bad!r})" if bad else "")
        return None


EC2_API = "https://docs.aws.amazon.com/AWSEC2/latest/APIReference"
RULES = (
    AwsRule("aws:ec2/securityGroup:SecurityGroup", "description", f"{EC2_TEXT}*", 255,
            f"{EC2_API}/API_CreateSecurityGroup.html"),
    AwsRule("aws:ec2/securityGroup:SecurityGroup", "name", f"(?!sg-){EC2_TEXT}+", 255,
            f"{EC2_API}/API_CreateSecurityGroup.html"),
    AwsRule("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "description", f"{EC2_TEXT}*", 255,
            f"{EC2_API}/API_IpRange.html"),
    AwsRule("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule", "description", f"{EC2_TEXT}*", 255,
            f"{EC2_API}/API_UserIdGroupPair.html"),
    AwsRule("aws:lb/loadBalancer:LoadBalancer", "name", r"(?!internal-)[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?",
            32, "https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateLoadBalancer.html", 1),
    AwsRule("aws:lb/targetGroup:TargetGroup", "name", r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?", 32,
            "https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateTargetGroup.html", 1),
    AwsRule("aws:iam/role:Role", "name", r"[\w+=,.@-]+", 64,
            "https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateRole.html", 1),
    AwsRule("aws:iam/rolePolicy:RolePolicy", "name", r"[\w+=,.@-]+", 128,
            "https://docs.aws.amazon.com/IAM/latest/APIReference/API_PutRolePolicy.html", 1),
    AwsRule("aws:iam/instanceProfile:InstanceProfile", "name", r"[\w+=,.@-]+", 128,
            "https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateInstanceProfile.html", 1),
    AwsRule("aws:cloudwatch/logGroup:LogGroup", "name", r"[.\-_/#A-Za-z0-9]+", 512,
            "https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_CreateLogGroup.html", 1),
    AwsRule("aws:ecr/repository:Repository", "name",
            r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*", 256,
            "https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_CreateRepository.html", 2),
    AwsRule("aws:cloudwatch/metricAlarm:MetricAlarm", "name", r"[^\x00-\x1f\x7f]+", 255,
            "https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html", 1),
    AwsRule("aws:cloudwatch/metricAlarm:MetricAlarm", "alarmDescription", r"[^\x00-\x1f\x7f]*", 1024,
            "https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html"),
    AwsRule("aws:cloudwatch/dashboard:Dashboard", "dashboardName", r"[A-Za-z0-9_-]+", 255,
            "https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutDashboard.html", 1),
    AwsRule("aws:ecs/cluster:Cluster", "name", r"[a-zA-Z0-9_-]+", 255,
            "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateCluster.html", 1),
    AwsRule("aws:ecs/service:Service", "name", r"[a-zA-Z0-9_-]+", 255,
            "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateService.html", 1),
    AwsRule("aws:ecs/taskDefinition:TaskDefinition", "family", r"[a-zA-Z0-9_-]+", 255,
            "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RegisterTaskDefinition.html", 1),
    AwsRule("aws:ecs/capacityProvider:CapacityProvider", "name", r"(?!(?:aws|ecs|fargate))[a-zA-Z0-9_-]+", 255,
            "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateCapacityProvider.html", 1),
    AwsRule("aws:ec2/launchTemplate:LaunchTemplate", "name", r"[a-zA-Z0-9().\-/_]+", 128,
            "https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateLaunchTemplate.html", 3),
    AwsRule("aws:sns/topic:Topic", "name", r"[A-Za-z0-9_-]+", 256,
            "https://docs.aws.amazon.com/sns/latest/api/API_CreateTopic.html", 1),
    AwsRule("aws:cloudfront/distribution:Distribution", "comment", r"[^<>]*", 128,
            "https://docs.aws.amazon.com/cloudfront/latest/APIReference/API_DistributionConfig.html"),
    AwsRule("aws:cloudfront/cachePolicy:CachePolicy", "comment", r"[^<>]*", 128,
            "https://docs.aws.amazon.com/cloudfront/latest/APIReference/API_CachePolicyConfig.html"),
    AwsRule("aws:cloudfront/vpcOrigin:VpcOrigin", "vpcOriginEndpointConfig.name", r"[a-zA-Z0-9_-]+", 64,
            "https://docs.aws.amazon.com/cloudfront/latest/APIReference/API_VpcOriginEndpointConfig.html", 1),
)
# Tags, on every resource that has them (EFS, EC2 and the rest share these limits).
TAG_KEY = AwsRule("*", "tags (key)", rf"(?!aws:){TAG_TEXT}+", 128,
                  "https://docs.aws.amazon.com/tag-editor/latest/userguide/best-practices-and-strats.html", 1)
TAG_VALUE = AwsRule("*", "tags (value)", rf"{TAG_TEXT}*", 256,
                    "https://docs.aws.amazon.com/tag-editor/latest/userguide/best-practices-and-strats.html")


def field_value(inputs: dict[str, Any], name: str, logical_name: str) -> Any:
    value: Any = inputs
    for part in name.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None and name in ("name", "dashboardName"):
        return logical_name + AUTONAME_SUFFIX
    return value


def violations(mocks: RecordingMocks, rules=RULES) -> Iterator[str]:
    for resource in mocks.resources:
        for rule in rules:
            if rule.resource_type != resource.typ:
                continue
            value = field_value(resource.inputs, rule.field, resource.name)
            if value is None:
                continue
            problem = rule.problem(str(value))
            if problem:
                yield f"{resource.urn} {rule.field} {value!r}: {problem} ({rule.source})"
        tags = resource.inputs.get("tags")
        tag_pairs = tags.items() if isinstance(tags, dict) else [
            (tag.get("key"), tag.get("value")) for tag in tags or [] if isinstance(tag, dict)]
        for key, value in tag_pairs:
            for rule, text in ((TAG_KEY, key), (TAG_VALUE, value)):
                problem = rule.problem(str(text))
                if problem:
                    yield f"{resource.urn} {rule.field} {text!r}: {problem} ({rule.source})"


@pytest.fixture(scope="module")
def everything(local_artifacts) -> RecordingMocks:
    from tests.program import run_program, stack_config

    mocks = RecordingMocks()
    run_program(mocks, "production", stack_config("production", {**local_artifacts, **EVERYTHING_ON}))
    return mocks


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: f"{rule.resource_type.rsplit(':', 1)[-1]}.{rule.field}")
def test_every_value_follows_the_rule_aws_documents(everything, rule):
    found = list(violations(everything, rules=(rule,)))
    assert not [v for v in found if " tags (" not in v], "\n".join(found)


def test_every_tag_follows_the_rule_aws_documents(everything):
    found = [v for v in violations(everything, rules=()) if " tags (" in v]
    assert not found, "\n".join(found)


def test_the_rules_cover_every_kind_of_name_the_stack_declares(everything):
    """A rule that matches nothing checks nothing: each row's resource type must be declared (VpcOrigin and the
    dashboard included), and so must each type whose name AWS constrains."""
    declared = {resource.typ for resource in everything.resources}
    unmatched = sorted({rule.resource_type for rule in RULES} - declared)
    assert not unmatched, f"rules for types the stack does not declare: {unmatched}"


@pytest.mark.parametrize("rule_type, field, value", [
    ("aws:ec2/securityGroup:SecurityGroup", "description", "the tiers' ports out"),
    ("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", "description", "NFS from the data's clients"),
    ("aws:lb/targetGroup:TargetGroup", "name", "a-target-group-name-of-33-chars-x"),
    ("aws:iam/role:Role", "name", "r" * 65),
    ("aws:ecr/repository:Repository", "name", "Upper-Case"),
    ("aws:cloudwatch/logGroup:LogGroup", "name", "/with space"),
])
def test_a_value_aws_refuses_is_caught(rule_type, field, value):
    """The apostrophe the old descriptions held, and the other classic refusals, each fail their rule."""
    (rule,) = [rule for rule in RULES if rule.resource_type == rule_type and rule.field == field]
    assert rule.problem(value), f"{rule_type} {field} {value!r} passes, but AWS refuses it ({rule.source})"
