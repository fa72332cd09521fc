"""Cdn: a CloudFront distribution in front of the production load balancer (`cdn: true`), which is then
internal and reached only through a CloudFront VPC origin.

Static files are cached at the edge as long as the static tier allows, pages for one second; a page CloudFront
holds is served stale while the load balancer answers 5xx (the single writer failing over). No cookie crosses
CloudFront in either direction, so no cached copy can carry a session. docs/production.md explains each choice."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import constants
from components.aws_cloud import AwsCloud

ORIGIN_ID = "load-balancer"
# Static files: the static tier's `expires 1h` decides within these bounds (unversioned names must be
# revalidated); the defaults only apply to an answer without Cache-Control or Expires.
STATIC_DEFAULT_TTL_SECONDS = 24 * 3600
STATIC_MAX_TTL_SECONDS = 365 * 24 * 3600
# Pages: exactly one second, whatever the app says. Jetty marks every answer that opens a session
# `Expires: Thu, 01 Jan 1970` (and every request CloudFront sends opens one, as it never sends the session
# cookie), so a minimum TTL of 0 would honour that date and cache nothing: the minimum must be 1 too.
PAGE_TTL_SECONDS = 1
# The load balancer's own errors during a failover (502 target refused, 503 no target, 504 target silent)
# and the app's 500. While CloudFront holds an expired copy of the page it serves that copy instead and asks
# the origin again after this many seconds; a page it does not hold gets the error, cached as long.
STALE_ON_ERROR_CODES = (500, 502, 503, 504)
ERROR_RECHECK_SECONDS = 5
# A page normally answers within a second (the slow-responses alarm is at 1 s p99). Bounded so that a hung
# Jetty costs a reader at most 2 x 10 s before CloudFront gives up and serves the stale copy.
ORIGIN_READ_TIMEOUT_SECONDS = 10
ORIGIN_CONNECTION_TIMEOUT_SECONDS = 5
ORIGIN_CONNECTION_ATTEMPTS = 2
# CloudFront accepts POST only with the full method set; only GET and HEAD answers are ever cached.
ALL_METHODS = ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"]
CACHED_METHODS = ["GET", "HEAD"]
VIEWER_TLS_POLICY = "TLSv1.2_2021"


@dataclass(frozen=True)
class CdnOptions:
    """What the stack's config decides about the CDN (settings.py validated it)."""

    certificate_arn: str        # ACM, us-east-1; "" serves only the distribution's *.cloudfront.net name
    price_class: str


@dataclass(frozen=True)
class CdnArgs:
    cloud: AwsCloud
    options: CdnOptions
    load_balancer: aws.lb.LoadBalancer
    origin_https: bool          # the load balancer has a certificate: its port 80 only redirects to 443
    # The load balancer is internal, in the private subnets: CloudFront reaches it through a VPC origin, over
    # AWS's network, never the internet (https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/
    # private-content-vpc-origins.html).
    domain_name: str            # "" when the site has no name of its own; needs options.certificate_arn
    web_acl_arn: pulumi.Input[str] | None = None    # a CLOUDFRONT-scope WAFv2 web ACL (components/web_firewall.py)


class Cdn(pulumi.ComponentResource):
    """CloudFront in front of the load balancer; `domain_name` and `hosted_zone_id` are what an alias record
    for the site points at."""

    domain_name: pulumi.Output[str]
    hosted_zone_id: pulumi.Output[str]

    def __init__(self, name: str, args: CdnArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("companynews:index:Cdn", name, None, opts)
        child = args.cloud.options(self)

        # Host is the only request header in either key, and it reaches the origin: Jetty builds its redirects
        # from it (so they name the site, not the load balancer), and with an HTTPS origin CloudFront checks the
        # load balancer's certificate against it. Viewers' Forwarded and X-Forwarded-* headers never pass.
        static_files = aws.cloudfront.CachePolicy(
            f"{name}-static-files",
            comment="companynews static files: long TTLs, no cookies or query strings in the key",
            min_ttl=0, default_ttl=STATIC_DEFAULT_TTL_SECONDS, max_ttl=STATIC_MAX_TTL_SECONDS,
            parameters_in_cache_key_and_forwarded_to_origin=self._key(query_strings="none"),
            opts=child)
        pages = aws.cloudfront.CachePolicy(
            f"{name}-pages",
            comment="companynews pages: one second, no cookies in the key or to the origin",
            min_ttl=PAGE_TTL_SECONDS, default_ttl=PAGE_TTL_SECONDS, max_ttl=PAGE_TTL_SECONDS,
            # The query string is part of the page, as in the training proxy's cache key.
            parameters_in_cache_key_and_forwarded_to_origin=self._key(query_strings="all"),
            opts=child)

        # No cookie in the key and none in an origin request policy: CloudFront removes Cookie from every
        # request it sends to the origin and Set-Cookie from every answer it stores or returns. Jetty never
        # sees a session id, so no answer is about one client, and no copy hands a session to another.
        static_behaviours = [aws.cloudfront.DistributionOrderedCacheBehaviorArgs(
            path_pattern=f"{prefix}*",
            target_origin_id=ORIGIN_ID,
            viewer_protocol_policy="redirect-to-https",
            allowed_methods=CACHED_METHODS,
            cached_methods=CACHED_METHODS,
            cache_policy_id=static_files.id,
            compress=True,
        ) for prefix in constants.STATIC_PATH_PREFIXES]

        if args.options.certificate_arn:
            viewer_certificate = aws.cloudfront.DistributionViewerCertificateArgs(
                acm_certificate_arn=args.options.certificate_arn, ssl_support_method="sni-only",
                minimum_protocol_version=VIEWER_TLS_POLICY)
            aliases = [args.domain_name]
        else:
            # *.cloudfront.net; CloudFront does not let a distribution raise this certificate's TLS floor.
            viewer_certificate = aws.cloudfront.DistributionViewerCertificateArgs(cloudfront_default_certificate=True)
            aliases = []

        # The load balancer's listeners decide the protocol: with a certificate port 80 only redirects, so
        # CloudFront must use 443 (TLS 1.2, the certificate checked against the forwarded Host); without one
        # there is only port 80, plain HTTP inside the VPC (allowPlainHttp must say so).
        vpc_origin = aws.cloudfront.VpcOrigin(
            f"{name}-load-balancer",
            vpc_origin_endpoint_config=aws.cloudfront.VpcOriginVpcOriginEndpointConfigArgs(
                name=f"companynews-{args.cloud.args.stack}-load-balancer",
                arn=args.load_balancer.arn,
                http_port=80,
                https_port=443,
                origin_protocol_policy="https-only" if args.origin_https else "http-only",
                origin_ssl_protocols=aws.cloudfront.VpcOriginVpcOriginEndpointConfigOriginSslProtocolsArgs(
                    items=["TLSv1.2"], quantity=1),
            ),
            opts=child)

        self.distribution = aws.cloudfront.Distribution(
            name,
            comment=f"companynews {args.cloud.args.stack}: the load balancer, cached",
            enabled=True,
            # The alias record in the output contract is an A record; the load balancer is IPv4 only too.
            is_ipv6_enabled=False,
            http_version="http2and3",
            price_class=args.options.price_class,
            aliases=aliases,
            viewer_certificate=viewer_certificate,
            restrictions=aws.cloudfront.DistributionRestrictionsArgs(
                geo_restriction=aws.cloudfront.DistributionRestrictionsGeoRestrictionArgs(restriction_type="none")),
            origins=[aws.cloudfront.DistributionOriginArgs(
                origin_id=ORIGIN_ID,
                domain_name=args.load_balancer.dns_name,
                connection_attempts=ORIGIN_CONNECTION_ATTEMPTS,
                connection_timeout=ORIGIN_CONNECTION_TIMEOUT_SECONDS,
                vpc_origin_config=aws.cloudfront.DistributionOriginVpcOriginConfigArgs(
                    vpc_origin_id=vpc_origin.id,
                    origin_read_timeout=ORIGIN_READ_TIMEOUT_SECONDS,
                ),
            )],
            ordered_cache_behaviors=static_behaviours,
            default_cache_behavior=aws.cloudfront.DistributionDefaultCacheBehaviorArgs(
                target_origin_id=ORIGIN_ID,
                viewer_protocol_policy="redirect-to-https",
                allowed_methods=ALL_METHODS,
                cached_methods=CACHED_METHODS,
                cache_policy_id=pages.id,
                compress=True,
            ),
            # Without a response page these entries only set how long an origin error stands; the stale copy
            # is CloudFront's own behaviour for an expired object when the origin answers 5xx or not at all.
            custom_error_responses=[aws.cloudfront.DistributionCustomErrorResponseArgs(
                error_code=code, error_caching_min_ttl=ERROR_RECHECK_SECONDS) for code in STALE_ON_ERROR_CODES],
            # A WAFv2 ACL is named by its ARN here (WAF Classic took the id): pulumi-aws cloudfront/distribution.py.
            web_acl_id=args.web_acl_arn,
            opts=child)

        self.domain_name = self.distribution.domain_name
        self.hosted_zone_id = self.distribution.hosted_zone_id
        self.register_outputs({"domain_name": self.domain_name, "hosted_zone_id": self.hosted_zone_id})

    @staticmethod
    def _key(*, query_strings: str) -> aws.cloudfront.CachePolicyParametersInCacheKeyAndForwardedToOriginArgs:
        """A cache key of Host, the path and `query_strings` ("none" or "all"), never a cookie."""
        cloudfront = aws.cloudfront
        return cloudfront.CachePolicyParametersInCacheKeyAndForwardedToOriginArgs(
            cookies_config=cloudfront.CachePolicyParametersInCacheKeyAndForwardedToOriginCookiesConfigArgs(
                cookie_behavior="none"),
            headers_config=cloudfront.CachePolicyParametersInCacheKeyAndForwardedToOriginHeadersConfigArgs(
                header_behavior="whitelist",
                headers=cloudfront.CachePolicyParametersInCacheKeyAndForwardedToOriginHeadersConfigHeadersArgs(
                    items=["Host"])),
            query_strings_config=cloudfront.CachePolicyParametersInCacheKeyAndForwardedToOriginQueryStringsConfigArgs(
                query_string_behavior=query_strings),
            # CloudFront compresses for viewers that accept it; the encoding is then part of the key.
            enable_accept_encoding_gzip=True,
            enable_accept_encoding_brotli=True,
        )
