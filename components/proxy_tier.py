"""ProxyTier: the front door — routes static paths to StaticSite, the rest to JettyApp.

Docker: nginx, the only published port, with a password-protected stats page and a smoke check that fails
the deploy if the door stays shut. AWS: an application load balancer, HTTPS when a certificate is configured,
with the alarms on what it sees; internet-facing, or with `cdn` internal behind CloudFront's VPC origin."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import pulumi
import pulumi_aws as aws
import pulumi_command as command
import pulumi_docker as docker

from components import constants
from components.artifacts import stage_build_context
from components.aws_cloud import AwsCloud, Backend
from components.cdn import Cdn, CdnArgs, CdnOptions
from components.docker_host import ContainerSpec, DockerHost
from components.jetty_app import JettyApp
from components.static_site import StaticSite
from components.web_firewall import WebFirewall, WebFirewallArgs, WebFirewallOptions

SMOKE_CHECK_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "smoke-check"
SMOKE_CHECK_SECONDS = 180
# TLS 1.3 and 1.2 (forward-secret suites only); nothing older reaches the site.
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
STATIC_RULE_PRIORITY = 10
SLOW_RESPONSE_SECONDS = 1.0
ERRORS_PER_FIVE_MINUTES = 10
# The load balancer closes a connection idle this long (AWS's default, set here so it is stated once). Jetty's
# own idle timeout must be longer, or the load balancer reuses a connection Jetty has just closed and answers
# 502: docker/app sets Jetty's above this (issue 11), and docs/production.md says which value lives where.
# https://docs.aws.amazon.com/elasticloadbalancing/latest/application/application-load-balancers.html#connection-idle-timeout
LOAD_BALANCER_IDLE_TIMEOUT_SECONDS = 60
# With no healthy target at all, UnHealthyHostCount stays 0 (nothing is registered to be unhealthy); this
# counts healthy ones. Longer than a writer deploy or failover (docs/single-writer.md), shorter than nothing.
NO_HEALTHY_HOST_MINUTES = 5


@dataclass(frozen=True)
class NginxDoor:
    """docker: the nginx front door, published on the host."""

    image_dir: Path             # docker/proxy
    context_dir: Path
    http_port: int
    bind_address: str
    stats_port: int
    stats_password: pulumi.Output[str]      # a secret
    post_rate_per_minute: int
    post_burst: int
    post_allow_cidrs: Sequence[str]
    client_max_body: str
    microcache_seconds: int
    memory_mb: int
    post_hold_seconds: int      # a post that arrives while no writer listens waits this long for one
    # "bridge": on the stack's network, ports published by Docker. "host": on the host's network, nginx
    # listening on bind_address:http_port itself, without Docker's userland proxy (docs/benchmarks.md).
    network_mode: str = "bridge"


@dataclass(frozen=True)
class LoadBalancerDoor:
    """aws: the application load balancer."""

    certificate_arn: str        # "" serves plain HTTP only
    domain_name: str            # "" names the site by the load balancer's own DNS name
    hosted_zone_id: str         # "" leaves the DNS record to whoever reads the dns_record output
    access_logs_bucket: str     # "" turns access logs off
    cdn: CdnOptions | None = None   # None: the load balancer is the front door itself
    firewall: WebFirewallOptions | None = None  # None: no AWS WAF web ACL (`waf: disabled`)
    deletion_protection: bool = True


@dataclass(frozen=True)
class ProxyTierArgs:
    platform: DockerHost | AwsCloud
    static_site: StaticSite
    app: JettyApp
    nginx: NginxDoor | None = None                  # required on docker
    load_balancer: LoadBalancerDoor | None = None   # required on aws


def client_address(bind_address: str) -> str:
    """Where a client on this host reaches a port published on `bind_address`."""
    return "127.0.0.1" if bind_address in ("0.0.0.0", "::") else bind_address


class ProxyTier(pulumi.ComponentResource):
    """The front door; `url` resolves only once the tiers behind it answer (docker: the smoke check saw
    /Read.action answer 200; aws: both ECS services reached a steady, healthy state)."""

    url: pulumi.Output[str]

    def __init__(self, name: str, args: ProxyTierArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("companynews:index:ProxyTier", name, None, opts)
        if isinstance(args.platform, DockerHost):
            if args.nginx is None:
                raise TypeError("ProxyTier on a DockerHost needs args.nginx")
            self._on_docker(args.platform, args, args.nginx)
            self.register_outputs({"url": self.url, "stats_url": self.stats_url})
        else:
            if args.load_balancer is None:
                raise TypeError("ProxyTier on AwsCloud needs args.load_balancer")
            self._on_aws(args.platform, args, args.load_balancer)
            self.register_outputs({"url": self.url, "hostname": self.hostname, "dns_name": self.dns_name,
                                   "zone_id": self.zone_id, "cdn_domain_name": self.cdn_domain_name})

    def _on_docker(self, host: DockerHost, args: ProxyTierArgs, door: NginxDoor) -> None:
        context = stage_build_context(door.image_dir, door.context_dir, {})
        image = host.image("proxy", context, {"PROXY_UID": str(constants.PROXY_UID)}, parent=self)
        backends = [*args.static_site.containers, *args.app.containers]
        envs = [
            f"STATIC_SERVERS={' '.join(args.static_site.servers)}",
            f"APP_SERVERS={' '.join(args.app.servers)}",
            door.stats_password.apply(lambda password: f"STATS_PASSWORD={password}"),
            f"POST_RATE_PER_MINUTE={door.post_rate_per_minute}",
            f"POST_BURST={door.post_burst}",
            f"POST_ALLOW_CIDRS={' '.join(door.post_allow_cidrs)}",
            f"CLIENT_MAX_BODY={door.client_max_body}",
            f"MICROCACHE_SECONDS={door.microcache_seconds}",
            f"POST_HOLD_SECONDS={door.post_hold_seconds}",
        ]
        # The stats page is for the operator on this host only, whatever bindAddress says.
        on_host_network = door.network_mode == "host"
        if on_host_network:
            # nginx takes the host's ports itself; the tiers stay on the stack's network, which the host
            # routes to.
            envs += [f"LISTEN_ADDRESS={door.bind_address}:{door.http_port}",
                     f"STATS_LISTEN_ADDRESS=127.0.0.1:{door.stats_port}"]
            ports = []
        else:
            ports = [
                docker.ContainerPortArgs(internal=constants.PROXY_PORT, external=door.http_port,
                                         ip=door.bind_address),
                docker.ContainerPortArgs(internal=constants.PROXY_STATS_PORT, external=door.stats_port,
                                         ip="127.0.0.1"),
            ]
        self.container = host.container(ContainerSpec(
            name="proxy",
            role="proxy",
            image=image.repo_digest,
            address=None if on_host_network else host.address("proxy"),
            alias=None if on_host_network else "proxy",
            user=f"{constants.PROXY_UID}:{constants.PROXY_UID}",
            memory_mb=door.memory_mb,
            envs=envs,
            ports=ports,
            # The micro-cache and its stale copies live in /tmp.
            tmpfs_size_mb=max(64, door.memory_mb // 2),
            depends_on=backends,
            host_network=on_host_network,
        ), parent=self)

        base_url = f"http://{client_address(door.bind_address)}:{door.http_port}/"
        smoke_check = command.local.Command(
            "smoke-check",
            create=f"{sys.executable} {SMOKE_CHECK_SCRIPT} {base_url}Read.action --timeout {SMOKE_CHECK_SECONDS}",
            # Any replaced container means a new front door to prove; after a release, once the old slot has
            # handed over (the new writer serves).
            triggers=[self.container.id, *[backend.id for backend in backends]],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.container, args.app.hand_over]),
        )
        self.url = smoke_check.stdout.apply(lambda _: base_url)
        self.stats_url = self.container.id.apply(lambda _: f"http://127.0.0.1:{door.stats_port}/")

    def _on_aws(self, cloud: AwsCloud, args: ProxyTierArgs, door: LoadBalancerDoor) -> None:
        child = cloud.options(self)
        static_backend: Backend = args.static_site.backend
        app_backend: Backend = args.app.backend
        https = bool(door.certificate_arn)
        behind_cdn = door.cdn is not None

        security_group = cloud.security_group(
            "load-balancer", "The load balancer: HTTP(S) in, the tier ports out", self)
        if behind_cdn:
            # Internal: no address outside the VPC reaches it. CloudFront's VPC origin reaches it through
            # network interfaces CloudFront places in the load balancer's (private) subnets, so only those
            # subnets may connect, and only on the one port CloudFront uses.
            origin_port = 443 if https else 80
            for index, cidr in enumerate(cloud.private_cidrs):
                aws.vpc.SecurityGroupIngressRule(
                    f"load-balancer-from-cdn-{index}", security_group_id=security_group.id, cidr_ipv4=cidr,
                    ip_protocol="tcp", from_port=origin_port, to_port=origin_port,
                    description="CloudFront VPC origin interfaces in the private subnets", opts=child)
        else:
            # The world reaches the load balancer, and only on the ports it listens on; it reaches the tasks.
            cloud.allow_internet("load-balancer-http", target=security_group, port=80,
                                 description="HTTP from anywhere (redirected to HTTPS when it is on)", parent=self)
            if https:
                cloud.allow_internet("load-balancer-https", target=security_group, port=443,
                                     description="HTTPS from anywhere", parent=self)
        for tier, backend in (("static", static_backend), ("app", app_backend)):
            cloud.allow(f"load-balancer-to-{tier}", source=security_group, target=backend.security_group,
                        port=backend.port, description=f"the load balancer to the {tier} tasks", parent=self)

        load_balancer = aws.lb.LoadBalancer(
            "load-balancer",
            load_balancer_type="application",
            internal=behind_cdn,
            subnets=cloud.private_subnet_ids if behind_cdn else cloud.public_subnet_ids,
            security_groups=[security_group.id],
            idle_timeout=LOAD_BALANCER_IDLE_TIMEOUT_SECONDS,
            # Deleting it takes the site down and changes its DNS name: `destroy` or a replacement must be
            # meant (albDeletionProtection false, applied first).
            enable_deletion_protection=door.deletion_protection,
            # A header with characters outside the RFC's set is dropped, not passed on for Jetty to parse.
            drop_invalid_header_fields=True,
            access_logs=aws.lb.LoadBalancerAccessLogsArgs(
                bucket=door.access_logs_bucket, prefix=f"companynews-{cloud.args.stack}", enabled=True,
            ) if door.access_logs_bucket else None,
            opts=child)

        forward_to_app = aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=app_backend.target_group.arn)
        if https:
            aws.lb.Listener(
                "http", load_balancer_arn=load_balancer.arn, port=80, protocol="HTTP",
                default_actions=[aws.lb.ListenerDefaultActionArgs(
                    type="redirect",
                    redirect=aws.lb.ListenerDefaultActionRedirectArgs(
                        protocol="HTTPS", port="443", status_code="HTTP_301"))],
                opts=child)
            front = aws.lb.Listener(
                "https", load_balancer_arn=load_balancer.arn, port=443, protocol="HTTPS",
                ssl_policy=TLS_POLICY, certificate_arn=door.certificate_arn,
                default_actions=[forward_to_app], opts=child)
        else:
            front = aws.lb.Listener(
                "http", load_balancer_arn=load_balancer.arn, port=80, protocol="HTTP",
                default_actions=[forward_to_app], opts=child)
        static_paths = aws.lb.ListenerRule(
            "static-paths",
            listener_arn=front.arn,
            priority=STATIC_RULE_PRIORITY,
            conditions=[aws.lb.ListenerRuleConditionArgs(
                path_pattern=aws.lb.ListenerRuleConditionPathPatternArgs(
                    values=[f"{prefix}*" for prefix in constants.STATIC_PATH_PREFIXES]))],
            actions=[aws.lb.ListenerRuleActionArgs(
                type="forward", target_group_arn=static_backend.target_group.arn)],
            opts=child)
        static_backend.routed_by([static_paths])
        app_backend.routed_by([front])

        if door.firewall is not None:
            WebFirewall("load-balancer-firewall", WebFirewallArgs(
                cloud=cloud, options=door.firewall, scope="REGIONAL", load_balancer_arn=load_balancer.arn,
                rate_limit_by_address=door.cdn is None), opts=pulumi.ResourceOptions(parent=self))
        self.load_balancer = load_balancer
        self.dns_name = load_balancer.dns_name
        self.zone_id = load_balancer.zone_id
        # What the public reaches and what domainName's alias record points at: the load balancer, or with
        # `cdn` the CloudFront distribution (viewers always get HTTPS there, redirected from HTTP).
        if door.cdn is not None:
            cdn_firewall = WebFirewall("cdn-firewall", WebFirewallArgs(
                cloud=cloud, options=door.firewall, scope="CLOUDFRONT"),
                opts=pulumi.ResourceOptions(parent=self)) if door.firewall is not None else None
            cdn = Cdn("cdn", CdnArgs(cloud=cloud, options=door.cdn, load_balancer=load_balancer, origin_https=https,
                                     domain_name=door.domain_name,
                                     web_acl_arn=cdn_firewall.arn if cdn_firewall else None),
                      opts=pulumi.ResourceOptions(parent=self))
            self.cdn_domain_name = cdn.domain_name
            self.distribution_id = cdn.distribution.id
            self.alias_target, self.alias_zone_id = cdn.domain_name, cdn.hosted_zone_id
            scheme = "https"
        else:
            self.cdn_domain_name = None
            self.distribution_id = None
            self.alias_target, self.alias_zone_id = load_balancer.dns_name, load_balancer.zone_id
            scheme = "https" if https else "http"
        if door.hosted_zone_id:
            aws.route53.Record(
                "site", zone_id=door.hosted_zone_id, name=door.domain_name, type="A",
                aliases=[aws.route53.RecordAliasArgs(
                    name=self.alias_target, zone_id=self.alias_zone_id,
                    # Route 53 refuses target health for a CloudFront alias; CloudFront has no single health.
                    evaluate_target_health=door.cdn is None)],
                opts=child)
        self._alarms(cloud, load_balancer, static_backend, app_backend)

        self.hostname = pulumi.Output.from_input(door.domain_name or self.alias_target)
        # Resolves once both services are steady and, with `cdn`, the distribution is deployed.
        self.url = pulumi.Output.all(
            self.hostname, args.static_site.service.id, args.app.service.id, self.alias_target,
        ).apply(lambda values: f"{scheme}://{values[0]}/")

    def _alarms(self, cloud: AwsCloud, load_balancer: aws.lb.LoadBalancer, static_backend: Backend,
                app_backend: Backend) -> None:
        on_load_balancer = {"LoadBalancer": load_balancer.arn_suffix}
        for name, metric, source in (("load-balancer-5xx", "HTTPCode_ELB_5XX_Count", "the load balancer itself"),
                                     ("target-5xx", "HTTPCode_Target_5XX_Count", "the tasks")):
            cloud.alarm(
                name, self,
                alarm_description=f"{source} answered {ERRORS_PER_FIVE_MINUTES} or more 5xx in 5 minutes",
                namespace="AWS/ApplicationELB", metric_name=metric, dimensions=on_load_balancer,
                statistic="Sum", period=300, evaluation_periods=1, threshold=ERRORS_PER_FIVE_MINUTES,
                comparison_operator="GreaterThanOrEqualToThreshold", treat_missing_data="notBreaching")
        cloud.alarm(
            "slow-responses", self,
            alarm_description=f"p99 response time above {SLOW_RESPONSE_SECONDS:g} s for 10 minutes",
            namespace="AWS/ApplicationELB", metric_name="TargetResponseTime", dimensions=on_load_balancer,
            extended_statistic="p99", period=300, evaluation_periods=2, threshold=SLOW_RESPONSE_SECONDS,
            comparison_operator="GreaterThanThreshold", treat_missing_data="notBreaching")
        for tier, backend in (("static", static_backend), ("app", app_backend)):
            cloud.alarm(
                f"{tier}-no-healthy-host", self,
                alarm_description=f"no {tier} task has passed the load balancer's health check for "
                                  f"{NO_HEALTHY_HOST_MINUTES} minutes",
                namespace="AWS/ApplicationELB", metric_name="HealthyHostCount",
                dimensions={**on_load_balancer, "TargetGroup": backend.target_group.arn_suffix},
                statistic="Maximum", period=60, evaluation_periods=NO_HEALTHY_HOST_MINUTES, threshold=1,
                comparison_operator="LessThanThreshold", treat_missing_data="breaching")
            cloud.alarm(
                f"{tier}-unhealthy-hosts", self,
                alarm_description=f"a {tier} task has failed the load balancer's health check for 3 minutes",
                namespace="AWS/ApplicationELB", metric_name="UnHealthyHostCount",
                dimensions={**on_load_balancer, "TargetGroup": backend.target_group.arn_suffix},
                statistic="Maximum", period=60, evaluation_periods=3, threshold=0,
                comparison_operator="GreaterThanThreshold", treat_missing_data="notBreaching")
