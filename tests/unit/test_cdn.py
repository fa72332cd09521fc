"""`cdn: true`: CloudFront in front of the production load balancer, as declared under mocks. What it caches and
for how long, that no session is ever cached or forwarded, what readers get while the writer fails over, and
that the outputs and the DNS record point at CloudFront."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from components import constants
from components.settings import SettingsError
from tests.unit.mocks import CDN_DOMAIN_NAME, CLOUDFRONT_ZONE_ID, RecordingMocks

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "outputs.schema.json").read_text())

DISTRIBUTION = "aws:cloudfront/distribution:Distribution"
CACHE_POLICY = "aws:cloudfront/cachePolicy:CachePolicy"
ALB = "load-balancer-1234567890.us-east-1.elb.amazonaws.com"
ALB_ZONE_ID = "Z35SXDOTRQ7X7K"
CDN_CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/abcdef01-2345-6789-abcd-ef0123456789"
ALB_CERTIFICATE = "arn:aws:acm:eu-west-1:123456789012:certificate/12345678-1234-1234-1234-123456789012"
# A site in eu-west-1 with its own name: the load balancer's certificate is regional, CloudFront's in us-east-1.
WITH_DOMAIN = {"cdn": "true", "region": "eu-west-1", "aws:region": "eu-west-1", "domainName": "news.example.com",
               "cdnCertificateArn": CDN_CERTIFICATE, "certificateArn": ALB_CERTIFICATE,
               "hostedZoneId": "Z0123456789ABC", "allowPlainHttp": "false"}


@pytest.fixture(scope="module")
def plain(local_artifacts):
    """cdn on, nothing else: no domain, a plain-HTTP load balancer, CloudFront's own name and certificate."""
    from tests.program import run_program, stack_config

    mocks = RecordingMocks()
    exports = run_program(mocks, "production", stack_config("production", {**local_artifacts, "cdn": "true"}))
    return mocks, exports


@pytest.fixture(scope="module")
def with_domain(local_artifacts):
    from tests.program import run_program, stack_config

    mocks = RecordingMocks()
    exports = run_program(mocks, "production", stack_config("production", {**local_artifacts, **WITH_DOMAIN}))
    return mocks, exports


def distribution(mocks: RecordingMocks) -> dict:
    found = mocks.of_type(DISTRIBUTION)
    assert len(found) == 1, f"expected one CloudFront distribution, found {[d.urn for d in found]}"
    return found[0].inputs


def cache_policy(mocks: RecordingMocks, behaviour: dict) -> dict:
    """The cache policy a behaviour names (the mocks give a resource the id `<name>-id`)."""
    (policy,) = [p for p in mocks.of_type(CACHE_POLICY) if f"{p.name}-id" == behaviour["cachePolicyId"]]
    return policy.inputs


def behaviours(mocks: RecordingMocks) -> list[dict]:
    declared = distribution(mocks)
    return [declared["defaultCacheBehavior"], *declared.get("orderedCacheBehaviors", [])]


def static_behaviours(mocks: RecordingMocks) -> dict[str, dict]:
    return {b["pathPattern"]: b for b in distribution(mocks).get("orderedCacheBehaviors", [])}


def test_no_cloudfront_without_cdn(run_stack):
    mocks, exports = run_stack("production", secret_keys=())
    cloudfront = [r.urn for r in mocks.resources if r.typ.startswith("aws:cloudfront/")]
    assert not cloudfront, f"cdn is false by default, yet: {cloudfront}"
    assert "cdn_domain_name" not in exports and exports["dns_record"]["target"] == ALB, exports


def test_the_only_origin_is_the_load_balancer(plain):
    mocks, _ = plain
    (origin,) = distribution(mocks)["origins"]
    assert origin["domainName"] == ALB, f"CloudFront fetches from {origin['domainName']}"
    targets = {b["targetOriginId"] for b in behaviours(mocks)}
    assert targets == {origin["originId"]}, f"behaviours send to {targets}"


VPC_ORIGIN = "aws:cloudfront/vpcOrigin:VpcOrigin"
LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"


@pytest.mark.parametrize("fixture, protocol", [("plain", "http-only"), ("with_domain", "https-only")])
def test_origin_protocol_follows_the_load_balancer_listeners(request, fixture, protocol):
    """Without certificateArn the load balancer has only port 80; with it port 80 only redirects to 443."""
    mocks, _ = request.getfixturevalue(fixture)
    (vpc_origin,) = mocks.of_type(VPC_ORIGIN)
    config = vpc_origin.inputs["vpcOriginEndpointConfig"]
    assert config["originProtocolPolicy"] == protocol, f"{fixture}: CloudFront reaches the origin by {config}"
    assert config["originSslProtocols"] == {"items": ["TLSv1.2"], "quantity": 1}, config


@pytest.mark.parametrize("fixture", ["plain", "with_domain"])
def test_with_cdn_the_load_balancer_is_internal_and_reached_only_through_the_vpc_origin(request, fixture):
    """No address on the internet reaches the load balancer: it lives in the private subnets, CloudFront reaches it
    through a VPC origin, and its security group admits only the private subnets, on the one origin port."""
    mocks, _ = request.getfixturevalue(fixture)
    (balancer,) = mocks.of_type(LOAD_BALANCER)
    assert balancer.inputs["internal"] is True, f"{balancer.urn} is internet-facing behind CloudFront"
    private = [f"{s.name}-id" for s in mocks.of_type("aws:ec2/subnet:Subnet") if s.name.startswith("private-")]
    assert balancer.inputs["subnets"] == private, f"{balancer.urn} in {balancer.inputs['subnets']}"
    (vpc_origin,) = mocks.of_type(VPC_ORIGIN)
    assert vpc_origin.inputs["vpcOriginEndpointConfig"]["arn"].endswith(":load-balancer"), vpc_origin.inputs
    (origin,) = distribution(mocks)["origins"]
    assert origin["vpcOriginConfig"]["vpcOriginId"] == f"{vpc_origin.name}-id", origin
    assert "customOriginConfig" not in origin, f"{origin}: a public custom origin"
    admitted = sorted((r.inputs.get("cidrIpv4"), r.inputs["fromPort"]) for r in mocks.of_type(INGRESS)
                      if r.inputs["securityGroupId"] == "load-balancer-id")
    port = 443 if fixture == "with_domain" else 80
    private_cidrs = sorted(s.inputs["cidrBlock"] for s in mocks.of_type("aws:ec2/subnet:Subnet")
                           if s.name.startswith("private-"))
    assert admitted == [(cidr, port) for cidr in private_cidrs], f"the load balancer admits {admitted}"


def test_static_paths_are_cached_long_with_no_cookie_or_query_string_in_the_key(plain):
    mocks, _ = plain
    static = static_behaviours(mocks)
    assert sorted(static) == sorted(f"{prefix}*" for prefix in constants.STATIC_PATH_PREFIXES), sorted(static)
    for pattern, behaviour in static.items():
        policy = cache_policy(mocks, behaviour)
        assert policy["defaultTtl"] >= 86400 and policy["maxTtl"] >= policy["defaultTtl"], f"{pattern}: {policy}"
        key = policy["parametersInCacheKeyAndForwardedToOrigin"]
        assert key["cookiesConfig"]["cookieBehavior"] == "none", f"{pattern} keys on cookies: {key}"
        assert key["queryStringsConfig"]["queryStringBehavior"] == "none", f"{pattern} keys on query strings"
        assert behaviour["allowedMethods"] == ["GET", "HEAD"], f"{pattern} lets {behaviour['allowedMethods']} through"


def test_pages_are_cached_for_one_second_whatever_jetty_says(plain):
    """Jetty marks session-opening answers Expires 1970: min TTL 0 would honour it and cache no page at all."""
    mocks, _ = plain
    policy = cache_policy(mocks, distribution(mocks)["defaultCacheBehavior"])
    ttls = (policy["minTtl"], policy["defaultTtl"], policy["maxTtl"])
    assert ttls == (1, 1, 1), f"pages are cached for min/default/max {ttls} seconds, not exactly one"


def test_no_cookie_is_in_any_cache_key_or_sent_to_the_origin(plain):
    """With no cookie forwarded CloudFront strips Cookie from origin requests and Set-Cookie from the answers it
    stores and returns, so no cached page can carry a JSESSIONID."""
    mocks, _ = plain
    for behaviour in behaviours(mocks):
        where = behaviour.get("pathPattern", "default behaviour")
        key = cache_policy(mocks, behaviour)["parametersInCacheKeyAndForwardedToOrigin"]
        assert key["cookiesConfig"] == {"cookieBehavior": "none"}, f"{where} keys on cookies: {key['cookiesConfig']}"
        assert not behaviour.get("originRequestPolicyId"), f"{where} has an origin request policy that could send some"
        assert not behaviour.get("forwardedValues"), f"{where} uses legacy forwarding: {behaviour['forwardedValues']}"


def test_only_host_reaches_jetty_of_the_viewers_headers(plain):
    """Jetty's http-forwarded module trusts Forwarded and X-Forwarded-*: a viewer's must not reach it."""
    mocks, _ = plain
    for behaviour in behaviours(mocks):
        headers = cache_policy(mocks, behaviour)["parametersInCacheKeyAndForwardedToOrigin"]["headersConfig"]
        assert headers == {"headerBehavior": "whitelist", "headers": {"items": ["Host"]}}, headers


def test_posts_reach_the_app_but_are_never_cached(plain):
    mocks, _ = plain
    pages = distribution(mocks)["defaultCacheBehavior"]
    assert "POST" in pages["allowedMethods"], f"pages allow {pages['allowedMethods']}: posting would fail"
    for behaviour in behaviours(mocks):
        assert behaviour["cachedMethods"] == ["GET", "HEAD"], f"caches {behaviour['cachedMethods']}"


@pytest.mark.parametrize("fixture", ["plain", "with_domain"])
def test_viewers_on_http_are_redirected_to_https(request, fixture):
    mocks, _ = request.getfixturevalue(fixture)
    for behaviour in behaviours(mocks):
        policy = behaviour["viewerProtocolPolicy"]
        assert policy == "redirect-to-https", f"{behaviour.get('pathPattern', 'default')}: {policy}"


def test_an_origin_5xx_or_silence_serves_the_stale_copy_and_is_rechecked_within_seconds(plain):
    """CloudFront serves an expired copy it holds when the origin answers 5xx or times out, for as long as the
    error caching minimum TTL, then asks again. No response page: a page it does not hold gets the real error."""
    mocks, _ = plain
    declared = distribution(mocks)
    errors = {e["errorCode"]: e for e in declared["customErrorResponses"]}
    assert set(errors) == {500, 502, 503, 504}, f"error responses for {sorted(errors)}"
    for code, error in errors.items():
        assert 1 <= error["errorCachingMinTtl"] <= 10, f"{code} stands for {error['errorCachingMinTtl']} s"
        assert "responsePagePath" not in error and "responseCode" not in error, f"{code} is rewritten: {error}"
    (origin,) = declared["origins"]
    worst_wait = origin["vpcOriginConfig"]["originReadTimeout"] * origin["connectionAttempts"]
    assert worst_wait <= 30, f"a hung app keeps a reader {worst_wait} s before the stale copy"


def test_cloudfront_certificate_and_alias_only_with_cdn_certificate_and_domain(plain, with_domain):
    own = distribution(plain[0])
    assert own["viewerCertificate"] == {"cloudfrontDefaultCertificate": True}, own["viewerCertificate"]
    assert not own.get("aliases"), f"aliases {own.get('aliases')} without a certificate for them"
    named = distribution(with_domain[0])
    assert named["aliases"] == ["news.example.com"], named["aliases"]
    assert named["viewerCertificate"] == {"acmCertificateArn": CDN_CERTIFICATE, "sslSupportMethod": "sni-only",
                                          "minimumProtocolVersion": "TLSv1.2_2021"}, named["viewerCertificate"]


def test_price_class_follows_config(plain, run_stack):
    assert distribution(plain[0])["priceClass"] == "PriceClass_100", "the default price class"
    mocks, _ = run_stack("production", secret_keys=(), cdn="true", cdnPriceClass="PriceClass_All")
    assert distribution(mocks)["priceClass"] == "PriceClass_All", "cdnPriceClass is ignored"


def test_cloudfront_resources_use_the_stack_provider(with_domain):
    mocks, _ = with_domain
    stray = [r.urn for r in mocks.resources
             if r.typ.startswith("aws:cloudfront/") and "pulumi:providers:aws::aws::" not in r.provider]
    assert not stray, f"on the default provider (disabled in Pulumi.production.yaml): {stray}"


def test_outputs_point_at_cloudfront_without_a_domain(plain):
    _, exports = plain
    assert exports == {
        "url": f"https://{CDN_DOMAIN_NAME}/",
        "hostname": CDN_DOMAIN_NAME,
        "alb_dns_name": ALB,
        "alb_zone_id": ALB_ZONE_ID,
        "dns_record": {"type": "ALIAS", "name": None, "target": CDN_DOMAIN_NAME, "zone_id": CLOUDFRONT_ZONE_ID},
        "dashboard_url": "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1"
                         "#dashboards:name=companynews-production",
        "cdn_domain_name": CDN_DOMAIN_NAME,
    }


def test_outputs_and_the_alias_record_point_at_cloudfront_with_a_domain(with_domain):
    mocks, exports = with_domain
    assert exports["url"] == "https://news.example.com/" and exports["hostname"] == "news.example.com", exports
    assert exports["dns_record"] == {"type": "ALIAS", "name": "news.example.com", "target": CDN_DOMAIN_NAME,
                                     "zone_id": CLOUDFRONT_ZONE_ID}, exports["dns_record"]
    assert (exports["alb_dns_name"], exports["cdn_domain_name"]) == (ALB, CDN_DOMAIN_NAME), exports
    (record,) = mocks.of_type("aws:route53/record:Record")
    assert record.inputs["aliases"] == [{"name": CDN_DOMAIN_NAME, "zoneId": CLOUDFRONT_ZONE_ID,
                                         "evaluateTargetHealth": False}], f"{record.urn} {record.inputs['aliases']}"


@pytest.mark.parametrize("fixture", ["plain", "with_domain"])
def test_outputs_with_cdn_satisfy_the_schema(request, fixture):
    _, exports = request.getfixturevalue(fixture)
    validator = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)
    problems = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(exports)]
    assert not problems, f"{json.dumps(exports)}: {problems}"


@pytest.mark.parametrize("overrides, words", [
    ({"cdn": "true", "cdnCertificateArn": CDN_CERTIFICATE.replace("us-east-1", "eu-west-1"),
      "domainName": "news.example.com"}, "ACM certificate ARN in us-east-1"),
    ({"cdn": "true", "domainName": "news.example.com"}, "must be an ACM certificate in us-east-1 for that name"),
    ({"cdnCertificateArn": CDN_CERTIFICATE, "domainName": "news.example.com"}, "unless cdn is true"),
    ({"cdn": "true", "cdnCertificateArn": CDN_CERTIFICATE}, "unless domainName is set"),
    ({"cdn": "true", "cdnPriceClass": "PriceClass_50"}, "one of PriceClass_100, PriceClass_200, PriceClass_All"),
])
def test_bad_cdn_settings_are_refused_before_any_resource(local_artifacts, overrides, words):
    from tests.program import run_program, stack_config

    mocks = RecordingMocks()
    with pytest.raises(SettingsError) as refused:
        run_program(mocks, "production", stack_config("production", {**local_artifacts, **overrides}))
    message = str(refused.value)
    assert words in message, message
    assert mocks.resources == [], f"declared before refusing: {[r.urn for r in mocks.resources]}"
