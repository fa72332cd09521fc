"""AWS WAF in production, as declared under mocks: the web ACL on the load balancer (and on CloudFront with `cdn`),
its managed and own rules, the settings that turn it to count or off, and what the declared rules answer to the
probes an attacker would send (tried with the rules' own patterns, following AWS WAF's documented matching)."""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from components import web_firewall
from tests.unit.mocks import REGION, RecordingMocks

WEB_ACL = "aws:wafv2/webAcl:WebAcl"
ASSOCIATION = "aws:wafv2/webAclAssociation:WebAclAssociation"
DISTRIBUTION = "aws:cloudfront/distribution:Distribution"
LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
CDN_IN_EU = {"cdn": "true", "region": "eu-west-1", "aws:region": "eu-west-1"}
# The load balancer hands AWS WAF the first 8 KB of a body (API_RequestBodyAssociatedResourceTypeConfig.html).
LOAD_BALANCER_BODY_LIMIT = 8192


@pytest.fixture(scope="module")
def production(local_artifacts):
    """Pulumi.production.yaml as committed: waf block, no cdn."""
    from tests.program import run_program, stack_config

    mocks = RecordingMocks()
    run_program(mocks, "production", stack_config("production", local_artifacts))
    return mocks


@pytest.fixture(scope="module")
def with_cdn(local_artifacts):
    from tests.program import run_program, stack_config

    mocks = RecordingMocks()
    run_program(mocks, "production", stack_config("production", {**local_artifacts, **CDN_IN_EU}))
    return mocks


def run(run_stack, **overrides) -> RecordingMocks:
    mocks, _ = run_stack("production", secret_keys=(), **overrides)
    return mocks


def acl(mocks: RecordingMocks, scope: str):
    found = [r for r in mocks.of_type(WEB_ACL) if r.inputs["scope"] == scope]
    assert len(found) == 1, f"expected one {scope} web ACL, found {[r.urn for r in mocks.of_type(WEB_ACL)]}"
    return found[0]


def rules_by_name(web_acl) -> dict[str, dict]:
    return {rule["name"]: rule for rule in web_acl.inputs["rules"]}


def arn_of(resource) -> str:
    """The ARN the mocks give a resource (tests/unit/mocks.py), as other resources' inputs carry it."""
    service = resource.typ.split(":")[1].split("/")[0]
    return f"arn:aws:{service}:{REGION}:123456789012:{resource.name}"


# --- where the ACLs are ---------------------------------------------------------------------------------

def test_load_balancer_acl_is_regional_on_the_stack_provider_and_associated_with_the_load_balancer(production):
    regional = acl(production, "REGIONAL")
    assert "region" not in regional.inputs, f"{regional.urn} overrides the stack's region: {regional.inputs['region']}"
    (association,) = production.of_type(ASSOCIATION)
    (load_balancer,) = production.of_type(LOAD_BALANCER)
    assert regional.provider == load_balancer.provider, f"{regional.urn} uses provider {regional.provider}"
    assert association.inputs == {"resourceArn": arn_of(load_balancer), "webAclArn": arn_of(regional)}, (
        f"{association.urn} associates {association.inputs}")
    assert not [r for r in production.of_type(WEB_ACL) if r.inputs["scope"] == "CLOUDFRONT"], "CLOUDFRONT ACL without cdn"


def test_with_cdn_the_distribution_names_a_cloudfront_acl_managed_in_us_east_1(with_cdn):
    cloudfront = acl(with_cdn, "CLOUDFRONT")
    assert cloudfront.inputs.get("region") == "us-east-1", (
        f"{cloudfront.urn} is managed in {cloudfront.inputs.get('region', 'the stack region eu-west-1')}: "
        f"CloudFront takes web ACLs from us-east-1 only")
    (distribution,) = with_cdn.of_type(DISTRIBUTION)
    assert distribution.inputs.get("webAclId") == arn_of(cloudfront), distribution.inputs.get("webAclId")
    # The load balancer behind CloudFront keeps its own ACL, in the stack's region.
    regional = acl(with_cdn, "REGIONAL")
    assert "region" not in regional.inputs
    (association,) = with_cdn.of_type(ASSOCIATION)
    assert association.inputs["webAclArn"] == arn_of(regional)


def test_with_cdn_posts_are_rate_limited_per_viewer_at_cloudfront_not_per_edge_at_the_load_balancer(with_cdn):
    assert "post-rate-limit" in rules_by_name(acl(with_cdn, "CLOUDFRONT"))
    assert "post-rate-limit" not in rules_by_name(acl(with_cdn, "REGIONAL")), (
        "behind CloudFront every request comes from a CloudFront address: a per-address limit there throttles "
        "every viewer of one edge together")


@pytest.mark.parametrize("cdn", ["false", "true"])
def test_waf_disabled_declares_no_web_acl(run_stack, cdn):
    mocks = run(run_stack, waf="disabled", cdn=cdn)
    waf = [r.urn for r in mocks.resources if r.typ.startswith("aws:wafv2/")]
    assert not waf, f"waf is disabled, yet: {waf}"
    for distribution in mocks.of_type(DISTRIBUTION):
        assert not distribution.inputs.get("webAclId"), distribution.inputs["webAclId"]


# --- what the ACLs hold ---------------------------------------------------------------------------------

@pytest.mark.parametrize("scope", ["REGIONAL", "CLOUDFRONT"])
def test_aws_managed_rule_groups_block_except_the_8_kb_body_rule_which_counts(with_cdn, scope):
    rules = rules_by_name(acl(with_cdn, scope))
    for rule_name, group, _ in web_firewall.MANAGED_RULE_GROUPS:
        rule = rules.get(rule_name)
        assert rule, f"{scope} ACL lacks {group}"
        statement = rule["statement"]["managedRuleGroupStatement"]
        assert (statement["vendorName"], statement["name"]) == ("AWS", group)
        assert rule["overrideAction"] == {"none": {}}, f"{group} does not block: {rule['overrideAction']}"
    common = rules["aws-common-rules"]["statement"]["managedRuleGroupStatement"]
    assert common["ruleActionOverrides"] == [{"name": "SizeRestrictions_BODY", "actionToUse": {"count": {}}}], (
        "a 2,000-character article is over 8 KB urlencoded: SizeRestrictions_BODY must only count")


def test_post_rate_limit_follows_the_setting_per_address_on_the_form_path(run_stack):
    rules = rules_by_name(acl(run(run_stack, wafPostRateLimit="1234"), "REGIONAL"))
    rule = rules["post-rate-limit"]
    statement = rule["statement"]["rateBasedStatement"]
    assert (statement["limit"], statement["aggregateKeyType"], statement["evaluationWindowSec"]) == (1234, "IP", 300)
    match = statement["scopeDownStatement"]["byteMatchStatement"]
    assert (match["fieldToMatch"], match["positionalConstraint"], match["searchString"]) == (
        {"uriPath": {}}, "EXACTLY", "/Post.action"), f"the rate rule counts {match}"
    assert rule["action"] == {"block": {"customResponse": {"responseCode": 429}}}, rule["action"]
    assert rule["priority"] == min(r["priority"] for r in rules.values()), "the rate rule must count every post first"


def test_count_mode_only_counts_in_every_rule(run_stack):
    mocks = run(run_stack, waf="count", cdn="true")
    for web_acl in mocks.of_type(WEB_ACL):
        for rule in web_acl.inputs["rules"]:
            if "managedRuleGroupStatement" in rule["statement"]:
                assert rule["overrideAction"] == {"count": {}}, f"{web_acl.name}/{rule['name']} blocks in count mode"
            else:
                assert rule["action"] == {"count": {}}, f"{web_acl.name}/{rule['name']} acts: {rule['action']}"
        assert web_acl.inputs["defaultAction"] == {"allow": {}}


def test_every_rule_and_acl_publishes_metrics_and_samples_under_valid_names(with_cdn):
    for web_acl in with_cdn.of_type(WEB_ACL):
        assert web_firewall.DESCRIPTION.match(web_acl.inputs["description"]), (
            f"the WAFV2 API refuses the description {web_acl.inputs['description']!r}")
        configs = [("the ACL", web_acl.inputs["visibilityConfig"])]
        configs += [(rule["name"], rule["visibilityConfig"]) for rule in web_acl.inputs["rules"]]
        for owner, config in configs:
            assert config["cloudwatchMetricsEnabled"] and config["sampledRequestsEnabled"], f"{web_acl.name}: {owner}"
            assert web_firewall.METRIC_NAME.match(config["metricName"]), config["metricName"]
        names = [rule["name"] for rule in web_acl.inputs["rules"]]
        assert all(web_firewall.RULE_NAME.match(name) for name in names), names
        priorities = [rule["priority"] for rule in web_acl.inputs["rules"]]
        assert len(set(names)) == len(names) and len(set(priorities)) == len(priorities), web_acl.inputs["rules"]


def _depth(statement: dict) -> int:
    (kind, body), = statement.items()
    inner = {"notStatement": lambda: [body["statement"]], "andStatement": lambda: body["statements"],
             "orStatement": lambda: body["statements"],
             "rateBasedStatement": lambda: [body["scopeDownStatement"]]}.get(kind, lambda: [])()
    return 1 + max((_depth(s) for s in inner), default=0)


# WCUs per statement, from the AWS WAF Developer Guide (waf-rule-statement-type-*.html, aws-managed-rule-groups-
# baseline.html): exact/starts/ends string match 2, contains 10, regex 3, size 1, rate-based 2 plus its scope-down,
# logical statements nothing of their own; +10 per text transformation other than NONE.
def _capacity(statement: dict) -> int:
    (kind, body), = statement.items()
    if kind == "managedRuleGroupStatement":
        return {group: wcu for _, group, wcu in web_firewall.MANAGED_RULE_GROUPS}[body["name"]]
    if kind == "notStatement":
        return _capacity(body["statement"])
    if kind in ("andStatement", "orStatement"):
        return sum(_capacity(s) for s in body["statements"])
    if kind == "rateBasedStatement":
        return 2 + _capacity(body["scopeDownStatement"])
    base = {"byteMatchStatement": 10 if body.get("positionalConstraint", "").startswith("CONTAINS") else 2,
            "regexMatchStatement": 3, "sizeConstraintStatement": 1}[kind]
    return base + 10 * sum(1 for t in body["textTransformations"] if t["type"] != "NONE")


def test_rules_fit_waf_limits_nesting_and_capacity(with_cdn, production):
    for web_acl in [*with_cdn.of_type(WEB_ACL), *production.of_type(WEB_ACL)]:
        for rule in web_acl.inputs["rules"]:
            assert _depth(rule["statement"]) <= web_firewall.MAX_STATEMENT_DEPTH, (
                f"{rule['name']} nests {_depth(rule['statement'])} statements: pulumi-aws types at most 3")
        capacity = sum(_capacity(rule["statement"]) for rule in web_acl.inputs["rules"])
        assert capacity <= web_firewall.CAPACITY_LIMIT, f"{web_acl.name} needs {capacity} WCUs"


# --- what the declared rules answer ---------------------------------------------------------------------

def _component(field: dict, request: dict) -> str | None:
    (kind, settings), = field.items()
    if kind == "singleHeader":
        return request["headers"].get(settings["name"])     # None: a missing header matches nothing
    return {"method": request["method"], "uriPath": request["path"], "queryString": request["query"],
            "body": request["body"][:LOAD_BALANCER_BODY_LIMIT]}[kind]


def _transform(value: str, transformations: list[dict]) -> str:
    for transformation in sorted(transformations, key=lambda t: t["priority"]):
        value = {"NONE": value, "LOWERCASE": value.lower()}[transformation["type"]]
    return value


def matches(statement: dict, request: dict) -> bool:
    """AWS WAF's matching of the statements this project uses (waf-rule-statement-type-string-match.html,
    -regex-match.html, -size-constraint-match.html, waf-rule-statements-logical.html). A regex is tried with
    Python's re: the patterns use only syntax PCRE and re read alike."""
    (kind, body), = statement.items()
    if kind == "notStatement":
        return not matches(body["statement"], request)
    if kind == "andStatement":
        return all(matches(s, request) for s in body["statements"])
    if kind == "orStatement":
        return any(matches(s, request) for s in body["statements"])
    value = _component(body["fieldToMatch"], request)
    if value is None:
        return False
    value = _transform(value, body["textTransformations"])
    if kind == "byteMatchStatement":
        return {"EXACTLY": value == body["searchString"], "STARTS_WITH": value.startswith(body["searchString"]),
                "CONTAINS": body["searchString"] in value}[body["positionalConstraint"]]
    if kind == "regexMatchStatement":
        return re.search(body["regexString"], value) is not None
    if kind == "sizeConstraintStatement":
        size, limit = len(value.encode()), body["size"]
        return {"GT": size > limit, "GE": size >= limit, "EQ": size == limit, "LT": size < limit}[
            body["comparisonOperator"]]
    raise AssertionError(f"no matcher for {kind}")


def answer(web_acl, method: str, target: str, headers: dict[str, str] | None = None, body: str = "") -> int | None:
    """The status our own rules answer, or None when they let the request through (to the managed groups, which
    are AWS's to evaluate, and then to the app). Rate-based rules need a rate, so they are not tried here."""
    path, _, query = target.partition("?")
    request = {"method": method, "path": path, "query": query, "body": body,
               "headers": {name.lower(): value for name, value in (headers or {}).items()}}
    for rule in sorted(web_acl.inputs["rules"], key=lambda r: r["priority"]):
        if "managedRuleGroupStatement" in rule["statement"] or "rateBasedStatement" in rule["statement"]:
            continue
        if matches(rule["statement"], request):
            return rule["action"]["block"]["customResponse"]["responseCode"]
    return None


FORM = {"Content-Type": "application/x-www-form-urlencoded"}
UNICODE_BODY = ("Grüße aus Zürich — 東京からのニュース ✓ " * 80)[:2000]
LEGITIMATE = [
    ("GET", "/", {}, ""),
    ("GET", "/Read.action", {}, ""),
    ("HEAD", "/Read.action", {}, ""),
    ("GET", "/Post.action", {}, ""),
    ("GET", "/styles/company.css", {}, ""),
    ("GET", "/images/logo.png", {}, ""),
    ("GET", "/styles/company.css?v=2", {}, ""),
    ("POST", "/Post.action", FORM, urlencode({"title": "Hello", "body": "World"})),
    ("POST", "/Post.action", {"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"},
     urlencode({"title": "Ünïcødé ✓", "body": UNICODE_BODY})),
    ("POST", "/Post.action", FORM, urlencode({"body": "x" * 2000, "title": "long"})),
]
OGNL = "%{6*7}"
PROBES = [
    # S2-016 family: prefixes in the query and in a form body.
    ("GET", f"/Read.action?{quote('redirect:' + OGNL)}", {}, "", 400),
    ("GET", f"/Read.action?{quote('redirectAction:' + OGNL)}", {}, "", 400),
    ("GET", f"/Read.action?{quote('action:' + OGNL)}", {}, "", 400),
    ("GET", f"/?{quote('redirect:http://example.invalid/')}", {}, "", 400),
    ("POST", "/Post.action", FORM, f"title=a&body=b&{quote('redirect:' + OGNL)}=", 400),
    ("POST", "/Post.action", FORM, f"{quote('redirectAction:' + OGNL)}=&title=a", 400),
    ("POST", "/Post.action", FORM, f"title=a&{quote('action:' + OGNL)}=x", 400),
    ("POST", "/Post.action", FORM, "title=a&redirect:%25%7B6*7%7D=", 400),
    # S2-009 / S2-005 parameter names, and the method: prefix.
    ("POST", "/Post.action", FORM, quote("('\\u0023_memberAccess[\\'allowStaticMethodAccess\\']')(a)", safe="") + "=1", 400),
    ("POST", "/Post.action", FORM, "title=a&" + quote("top['foo'](0)", safe="") + "=1", 400),
    ("POST", "/Post.action", FORM, "method:execute=1&title=a&body=b", 400),
    ("GET", "/Post.action?method:execute", {}, "", 400),
    # A GET that would post, skipping the post rate limit; a cache-busting query on the list.
    ("GET", "/Post.action?title=t&body=b", {}, "", 400),
    ("GET", "/Read.action?nocache=81234", {}, "", 400),
    # S2-045: OGNL in a multipart Content-Type, with any method.
    ("POST", "/Post.action", {"Content-Type": "%{(#_='multipart/form-data').(#dm=@ognl.OgnlContext@DEFAULT_MEMBER_ACCESS)}"},
     "", 400),
    ("GET", "/Read.action", {"Content-Type": "multipart/form-data; boundary=x"}, "", 400),
    ("POST", "/Post.action", {"Content-Type": "multipart/form-data; boundary=x"}, "--x--", 400),
    ("POST", "/Post.action", {}, "title=a&body=b", 400),
    # Methods.
    ("TRACE", "/", {}, "", 405),
    ("PUT", "/Post.action", FORM, "title=a", 405),
    ("DELETE", "/Read.action", {}, "", 405),
    ("OPTIONS", "/Read.action", {}, "", 405),
    ("GETS", "/Read.action", {}, "", 405),     # a method is matched whole, not by its prefix
    ("POST", "/Read.action", FORM, "title=a", 405),
    ("POST", "/styles/company.css", FORM, "title=a", 405),
    # Path tricks: never the app's path as Jetty would read it.
    ("GET", "/Read.action;x", {}, "", 404),
    ("GET", "//Read.action", {}, "", 404),
    ("GET", "/%52ead.action", {}, "", 404),
    ("GET", "/WEB-INF/web.xml", {}, "", 404),
    ("GET", "/index.jsp", {}, "", 404),
    ("GET", "/read.action", {}, "", 404),
    ("GET", "/Read.action/", {}, "", 404),
]


@pytest.mark.parametrize("scope", ["REGIONAL", "CLOUDFRONT"])
@pytest.mark.parametrize("method, target, headers, body", LEGITIMATE)
def test_the_apps_own_requests_pass_our_rules(with_cdn, scope, method, target, headers, body):
    status = answer(acl(with_cdn, scope), method, target, headers, body)
    assert status is None, f"{scope} ACL answers {method} {target} {headers} with {status}"


@pytest.mark.parametrize("scope", ["REGIONAL", "CLOUDFRONT"])
@pytest.mark.parametrize("method, target, headers, body, status", PROBES)
def test_each_probe_is_refused_as_the_front_door_refuses_it(with_cdn, scope, method, target, headers, body, status):
    answered = answer(acl(with_cdn, scope), method, target, headers, body)
    assert answered == status, f"{scope} ACL answers {method} {target} {headers} {body[:80]!r} with {answered}"


def test_a_2000_character_unicode_article_is_over_the_8_kb_the_body_rule_would_refuse():
    """Why SizeRestrictions_BODY only counts: the legitimate post above is over its 8 KB."""
    size = len(urlencode({"title": "Ünïcødé ✓", "body": UNICODE_BODY}).encode())
    assert size > 8192, size


def _all_statements(statement: dict) -> list[dict[str, Any]]:
    (kind, body), = statement.items()
    nested = body.get("statements", []) + [body[key] for key in ("statement", "scopeDownStatement") if key in body]
    return [statement, *[s for inner in nested for s in _all_statements(inner)]]


def test_headers_are_named_in_lower_case_and_paths_read_raw(production):
    """SingleHeader names must be lower case; a path is matched as sent (a URL_DECODE would admit /%52ead.action);
    a regex fits the API's 512 characters."""
    for rule in acl(production, "REGIONAL").inputs["rules"]:
        for statement in _all_statements(rule["statement"]):
            (kind, body), = statement.items()
            field = body.get("fieldToMatch", {}) if isinstance(body, dict) else {}
            if "singleHeader" in field:
                assert field["singleHeader"]["name"] == field["singleHeader"]["name"].lower(), rule["name"]
            if "uriPath" in field:
                assert [t["type"] for t in body["textTransformations"]] == ["NONE"], rule["name"]
            if kind == "regexMatchStatement":
                assert len(body["regexString"]) <= web_firewall.REGEX_MAX_LENGTH, rule["name"]
