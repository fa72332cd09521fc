"""WebFirewall: an AWS WAF web ACL in front of production (the load balancer, and CloudFront with `cdn`).

companyNews is Struts 2.1.8 and cannot be patched from here (docs/security.md), so the ACL admits only the
app's own requests, the way the training front door does (docker/proxy/shield/), and adds AWS's managed rules
for the rest. Every rule can be switched to count (`waf: count`) to watch what it would refuse."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components import constants
from components.aws_cloud import AwsCloud

# The app's own pages (tests/fixtures/standin: the pages link only to these, styles/ and images/, never with a
# query string). Everything under STATIC_PATH_PREFIXES is the static tier's, which never reaches Struts.
APP_PATHS = ("/", "/Read.action", "/Post.action")
POST_PATH = "/Post.action"
READ_METHODS = ("GET", "HEAD")
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
# CloudFront ACLs are managed in us-east-1 whatever the stack's region: "To work with CloudFront, you must also
# specify the region us-east-1" (pulumi-aws 7.51.1 wafv2/web_acl.py, `scope`). pulumi-aws 7 bridges Terraform's
# AWS provider 6, which takes the region per resource (`region`, same file; registry docs of aws_wafv2_web_acl),
# so the stack's own provider, with its default tags, serves both scopes without a second provider.
CLOUDFRONT_REGION = "us-east-1"
SCOPES = ("REGIONAL", "CLOUDFRONT")
MODES = ("block", "count")
# The rate-based rule counts over the default window of 300 s (valid: 60, 120, 300, 600; AWS WAF Developer Guide,
# waf-rule-statement-type-rate-based-high-level-settings.html); settings.py keeps the limit within AWS's range.
RATE_WINDOW_SECONDS = 300
# The WAFV2 API's own limits (its service model, botocore data/wafv2/2019-07-29/service-2.json: EntityName,
# MetricName, EntityDescription, RegexPatternString): a description takes no apostrophe or parenthesis.
RULE_NAME = re.compile(r"^[\w\-]{1,128}$")
METRIC_NAME = re.compile(r"^[\w#:\.\-/]{1,255}$")
DESCRIPTION = re.compile(r"^[\w+=:#@/\-,\.][\w+=:#@/\-,\.\s]+[\w+=:#@/\-,\.]$")
REGEX_MAX_LENGTH = 512
# The Terraform schema under pulumi-aws types at most three levels of nested statements (`rule_json` exists only
# to go deeper, without drift detection: wafv2/web_acl.py): every rule below stays within three.
MAX_STATEMENT_DEPTH = 3
# A web ACL holds 1,500 WCUs by default (aws-waf-capacity-units.html). The managed groups cost what their pages
# say (aws-managed-rule-groups-baseline.html: CommonRuleSet 700, KnownBadInputsRuleSet 200); our own rules cost
# 2 per exact string match, 3 per regex, 1 per size check, +10 per text transformation other than NONE
# (waf-rule-statement-type-string-match.html, -regex-match.html, -size-constraint-match.html), about 40 in all.
CAPACITY_LIMIT = 1500
MANAGED_RULE_GROUPS = (
    # OWASP-style generic rules: LFI/RFI paths, XSS and SSRF in bodies, bad bots, oversize parts.
    ("aws-common-rules", "AWSManagedRulesCommonRuleSet", 700),
    # Exploit patterns of known bad inputs, among them Java deserialization and Log4j lookups (the app is Java).
    ("aws-known-bad-inputs", "AWSManagedRulesKnownBadInputsRuleSet", 200),
)
# SizeRestrictions_BODY blocks any body over 8 KB. A legitimate article is larger than that once urlencoded: a
# 2,000-character body of non-ASCII text is up to 18 KB (each character 2-3 UTF-8 bytes, each byte %XX), and the
# front door allows clientMaxBody (64k). It counts instead; what the ACL cannot read past 8 KB (the load
# balancer's fixed inspection limit) is left to the app server's own filter (docs/security.md).
COUNTED_MANAGED_RULES = {"AWSManagedRulesCommonRuleSet": ("SizeRestrictions_BODY",)}


@dataclass(frozen=True)
class WebFirewallOptions:
    """What the stack's config decides (settings.py validated it)."""

    mode: str                   # "block", or "count": every rule only counts what it would refuse
    post_rate_limit: int        # requests to /Post.action (any method) per 5 minutes from one address


@dataclass(frozen=True)
class WebFirewallArgs:
    cloud: AwsCloud
    options: WebFirewallOptions
    scope: str                  # "REGIONAL" (the load balancer) or "CLOUDFRONT" (the distribution)
    load_balancer_arn: pulumi.Input[str] | None = None  # REGIONAL: the ACL is associated with it
    # False when every request comes through CloudFront, so that the address WAF sees is one of CloudFront's, not
    # the viewer's: a per-address limit would then throttle everyone behind one edge at once. The CloudFront ACL
    # sees the viewers and limits them there.
    rate_limit_by_address: bool = True


# --- statements (the WAFv2 API's shapes, as pulumi-aws's *ArgsDict input types) ------------------------

def uri_path() -> dict:
    return {"uri_path": {}}


def method() -> dict:
    return {"method": {}}


def query_string() -> dict:
    return {"query_string": {}}


def header(name: str) -> dict:
    # A single header is named in lower case (the API's SingleHeader.Name).
    return {"single_header": {"name": name.lower()}}


def body() -> dict:
    # A body longer than the inspection limit (8 KB on a load balancer, 16 KB on CloudFront) is judged on what
    # fits; MATCH would refuse every long article.
    return {"body": {"oversize_handling": "CONTINUE"}}


def _transformations(transformation: str) -> list[dict]:
    return [{"priority": 0, "type": transformation}]


def exactly(field: dict, value: str, transformation: str = "NONE") -> dict:
    return {"byte_match_statement": {"field_to_match": field, "positional_constraint": "EXACTLY",
                                     "search_string": value, "text_transformations": _transformations(transformation)}}


def matches(field: dict, pattern: str, transformation: str = "NONE") -> dict:
    """A regex match; AWS WAF runs PCRE (waf-regex-pattern-support.html), and these patterns mean the same there
    as in Python's re, which the unit tests use to try them."""
    return {"regex_match_statement": {"field_to_match": field, "regex_string": pattern,
                                      "text_transformations": _transformations(transformation)}}


def present(field: dict) -> dict:
    """The component has at least one byte (a missing header or an empty query string does not match)."""
    return {"size_constraint_statement": {"field_to_match": field, "comparison_operator": "GT", "size": 0,
                                          "text_transformations": _transformations("NONE")}}


def not_(statement: dict) -> dict:
    return {"not_statement": {"statement": statement}}


def and_(*statements: dict) -> dict:
    return {"and_statement": {"statements": list(statements)}}


def or_(*statements: dict) -> dict:
    return {"or_statement": {"statements": list(statements)}}


def _alternatives(values: tuple[str, ...]) -> str:
    return "|".join(re.escape(value) for value in values)


# The raw path, as sent: no transformation (decoding and path normalization are transformations one asks for:
# waf-rule-statement-transformation.html), so /Read.action;x, //Read.action and /%52ead.action are not
# /Read.action here (as at the front door, which reads $request_uri).
APP_PATH_PATTERN = f"^({_alternatives(APP_PATHS)})$"
STATIC_PATH_PATTERN = f"^({_alternatives(constants.STATIC_PATH_PREFIXES)})"
METHOD_PATTERN = f"^({_alternatives((*READ_METHODS, 'POST'))})$"
# As at the front door: the form's type, optionally with a charset (the header is lower-cased first).
FORM_CONTENT_TYPE_PATTERN = rf"^{re.escape(FORM_CONTENT_TYPE)}\s*(;\s*charset=[a-z0-9_-]+\s*)?$"
# A form field name with a character outside [A-Za-z0-9_], in the raw urlencoded body: OGNL needs at least one
# of ( ) [ ] ' # : . or %, and the app's names are `title` and `body`. Values never hold a raw & or =.
BAD_FIELD_NAME_PATTERN = r"(^|&)[A-Za-z0-9_]*[^A-Za-z0-9_=&]"


@dataclass(frozen=True)
class OwnRule:
    name: str
    statement: dict
    refusal_status: int         # what a refused request is answered, as at the front door
    stops: str                  # for people: docs/security.md lists the same


def own_rules(options: WebFirewallOptions, rate_limit_by_address: bool) -> list[OwnRule]:
    """The front door's allow-list as WAF rules, in the order WAF tries them."""
    rules = []
    if rate_limit_by_address:
        # First, so that every request to the form counts, also those a later rule refuses.
        rules.append(OwnRule("post-rate-limit", {"rate_based_statement": {
            "limit": options.post_rate_limit, "aggregate_key_type": "IP",
            "evaluation_window_sec": RATE_WINDOW_SECONDS,
            "scope_down_statement": exactly(uri_path(), POST_PATH)}}, 429,
            "one address posting (or fetching the form) faster than wafPostRateLimit per 5 minutes"))
    rules += [
        OwnRule("allowed-methods", not_(matches(method(), METHOD_PATTERN)), 405,
                "any method but GET, HEAD and POST (TRACE, PUT, DELETE, OPTIONS, ...)"),
        OwnRule("post-only-to-the-form", and_(exactly(method(), "POST"), not_(exactly(uri_path(), POST_PATH))),
                405, "POST anywhere but /Post.action"),
        OwnRule("allowed-paths", not_(or_(matches(uri_path(), APP_PATH_PATTERN),
                                          matches(uri_path(), STATIC_PATH_PATTERN))), 404,
                "any path outside /, /Read.action, /Post.action, /styles/, /images/ (/WEB-INF/web.xml, "
                "/index.jsp, /Read.action;x, //Read.action, /%52ead.action)"),
        OwnRule("no-query-on-app-paths", and_(present(query_string()), not_(matches(uri_path(), STATIC_PATH_PATTERN))),
                400, "a query string on an app path (S2-016 redirect:/action: prefixes, GET posts, cache bypass)"),
        OwnRule("form-content-type", and_(not_(matches(header("Content-Type"), FORM_CONTENT_TYPE_PATTERN,
                                                       "LOWERCASE")),
                                          or_(exactly(method(), "POST"), present(header("Content-Type")))), 400,
                "a body that is not a urlencoded form (multipart/form-data, S2-045 OGNL in Content-Type)"),
        OwnRule("form-field-names", matches(body(), BAD_FIELD_NAME_PATTERN), 400,
                "a form field name outside [A-Za-z0-9_] within the first 8 KB (S2-009/S2-005 OGNL names, "
                "redirect:, method: prefixes in the body)"),
    ]
    return rules


def _visibility(metric_name: str) -> dict:
    # Metrics in CloudWatch (AWS/WAFV2, per rule and for the ACL) and sampled requests in the console: how an
    # operator sees what was refused and why, and what a `count` rule would have refused.
    return {"cloudwatch_metrics_enabled": True, "metric_name": metric_name, "sampled_requests_enabled": True}


class WebFirewall(pulumi.ComponentResource):
    """One web ACL of `scope`; on REGIONAL it is associated with the load balancer, on CLOUDFRONT the distribution
    names `arn` as its web_acl_id."""

    arn: pulumi.Output[str]

    def __init__(self, name: str, args: WebFirewallArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("companynews:index:WebFirewall", name, None, opts)
        if args.scope not in SCOPES:
            raise ValueError(f"WebFirewall scope {args.scope!r}: it must be one of {', '.join(SCOPES)}")
        if args.options.mode not in MODES:
            raise ValueError(f"WebFirewall mode {args.options.mode!r}: it must be one of {', '.join(MODES)}")
        stack = args.cloud.args.stack
        counting = args.options.mode == "count"

        rules: list[dict[str, Any]] = []
        for priority, rule in enumerate(own_rules(args.options, args.rate_limit_by_address)):
            action = {"count": {}} if counting else {"block": {"custom_response": {
                "response_code": rule.refusal_status}}}
            rules.append({"name": rule.name, "priority": priority, "action": action, "statement": rule.statement,
                          "visibility_config": _visibility(f"companynews-{rule.name}")})
        for rule_name, group, _capacity in MANAGED_RULE_GROUPS:
            rules.append({
                "name": rule_name, "priority": len(rules),
                # none: the group's own actions (block) apply; count: they only count.
                "override_action": {"count": {}} if counting else {"none": {}},
                "statement": {"managed_rule_group_statement": {
                    "vendor_name": "AWS", "name": group,
                    "rule_action_overrides": [{"name": counted, "action_to_use": {"count": {}}}
                                              for counted in COUNTED_MANAGED_RULES.get(group, ())]}},
                "visibility_config": _visibility(f"companynews-{rule_name}")})

        region = {"region": CLOUDFRONT_REGION} if args.scope == "CLOUDFRONT" else {}
        self.web_acl = aws.wafv2.WebAcl(
            name,
            description=f"companynews {stack}: only the app surface, {args.scope.lower()} scope",
            scope=args.scope,
            # Everything outside the allow-list is refused by a rule above; what is left is the app's surface.
            default_action={"allow": {}},
            rules=rules,
            visibility_config=_visibility(f"companynews-{stack}-{name}"),
            **region,
            opts=args.cloud.options(self))
        if args.scope == "REGIONAL":
            if args.load_balancer_arn is None:
                raise TypeError("a REGIONAL WebFirewall needs args.load_balancer_arn")
            aws.wafv2.WebAclAssociation(
                f"{name}-load-balancer", resource_arn=args.load_balancer_arn, web_acl_arn=self.web_acl.arn,
                opts=args.cloud.options(self))
        self.arn = self.web_acl.arn
        self.register_outputs({"arn": self.arn})
