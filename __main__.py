"""The companyNews stack: validated settings in, the four components assembled, the output contract out."""
import os
from pathlib import Path

import pulumi

from components.artifacts import ArtifactSource, prepare_artifacts
from components.aws_cloud import AwsCloud, AwsCloudArgs
from components.cdn import CdnOptions
from components.dashboard import OperationsDashboard, OperationsDashboardArgs
from components.docker_host import DockerHost, DockerHostArgs
from components.jetty_app import JettyApp, JettyAppArgs
from components.prevayler_volume import SharedPrevaylerVolume, SharedPrevaylerVolumeArgs
from components.proxy_tier import LoadBalancerDoor, NginxDoor, ProxyTier, ProxyTierArgs, client_address
from components.settings import load_settings
from components.static_site import StaticSite, StaticSiteArgs
from components.web_firewall import WebFirewallOptions

PROJECT_DIR = Path(__file__).resolve().parent
IMAGES_DIR = PROJECT_DIR / "docker"

# Every bad key is reported here, before any resource is declared.
settings = load_settings(pulumi.get_stack())
common = settings.common
cache_dir = Path(os.environ.get("COMPANYNEWS_ARTIFACT_CACHE", PROJECT_DIR / ".artifacts"))
contexts_dir = cache_dir / "contexts" / settings.stack
# Bad artifacts are refused here too, before anything is built or replaced.
artifacts = prepare_artifacts(
    ArtifactSource("warUrl", common.war_url, common.war_sha256 or None),
    ArtifactSource("staticUrl", common.static_url, common.static_sha256 or None),
    cache_dir,
    max_bytes=common.artifact_max_bytes,
)

# The one place the platforms part: what runs the tiers, and the few arguments only one platform has.
if common.platform == "aws":
    aws_settings = settings.aws
    platform = AwsCloud("aws-cloud", AwsCloudArgs(
        stack=settings.stack, region=aws_settings.region, az_count=aws_settings.az_count,
        vpc_cidr=aws_settings.vpc_cidr, nat_per_az=aws_settings.nat_per_az, instance_type=aws_settings.instance_type,
        min_instances=aws_settings.min_instances, max_instances=aws_settings.max_instances,
        log_retention_days=aws_settings.log_retention_days, ecr_keep_images=aws_settings.ecr_keep_images,
        alarm_email=aws_settings.alarm_email, base_image=common.base_image, process_limit=common.process_limit))
    static_options = {"min_replicas": aws_settings.static_min_tasks, "max_replicas": aws_settings.static_max_tasks}
    app_options = {"replicas": 1, "health_check_grace_seconds": aws_settings.health_check_grace_seconds,
                   "stop_timeout_seconds": aws_settings.app_stop_timeout_seconds}
    door_options = {"load_balancer": LoadBalancerDoor(
        certificate_arn=aws_settings.certificate_arn, domain_name=aws_settings.domain_name,
        hosted_zone_id=aws_settings.hosted_zone_id, access_logs_bucket=aws_settings.access_logs_bucket,
        deletion_protection=aws_settings.alb_deletion_protection,
        cdn=CdnOptions(certificate_arn=aws_settings.cdn_certificate_arn, price_class=aws_settings.cdn_price_class)
        if aws_settings.cdn else None,
        firewall=WebFirewallOptions(mode=aws_settings.waf, post_rate_limit=aws_settings.waf_post_rate_limit)
        if aws_settings.waf != "disabled" else None)}
else:
    docker_settings = settings.docker
    platform = DockerHost("docker-host", DockerHostArgs(
        stack=settings.stack, subnet=docker_settings.docker_subnet, base_image=common.base_image,
        process_limit=common.process_limit))
    static_options = {}
    app_options = {"replicas": docker_settings.app_replicas}
    door_options = {"nginx": NginxDoor(
        image_dir=IMAGES_DIR / "proxy", context_dir=contexts_dir / "proxy",
        http_port=docker_settings.http_port, bind_address=docker_settings.bind_address,
        stats_port=docker_settings.stats_port, stats_password=pulumi.Output.secret(docker_settings.stats_password),
        post_rate_per_minute=common.post_rate_per_minute, post_burst=common.post_burst,
        post_allow_cidrs=common.post_allow_cidrs, client_max_body=common.client_max_body,
        microcache_seconds=common.microcache_seconds, memory_mb=common.proxy_memory_mb,
        post_hold_seconds=docker_settings.post_hold_seconds,
        network_mode=docker_settings.proxy_network_mode)}

volume = SharedPrevaylerVolume("prevayler-data", SharedPrevaylerVolumeArgs(platform=platform))
static_site = StaticSite("static", StaticSiteArgs(
    platform=platform, image_dir=IMAGES_DIR / "static", site_dir=artifacts.static_dir,
    context_dir=contexts_dir / "static", replicas=common.static_replicas, memory_mb=common.static_memory_mb,
    **static_options))
app = JettyApp("app", JettyAppArgs(
    platform=platform, image_dir=IMAGES_DIR / "app", war=artifacts.war, war_sha256=artifacts.war_sha256,
    context_dir=contexts_dir / "app",
    memory_mb=common.app_memory_mb, volume=volume, data_free_floor_kib=common.data_free_floor_kib, **app_options))
proxy = ProxyTier("proxy", ProxyTierArgs(platform=platform, static_site=static_site, app=app, **door_options))

# The output contract (docs/outputs.md); DNS tooling reads these names, so renaming one is a breaking change.
pulumi.export("url", proxy.url)
if common.platform == "aws":
    dashboard = OperationsDashboard("operations", OperationsDashboardArgs(
        cloud=platform, load_balancer_arn_suffix=proxy.load_balancer.arn_suffix,
        target_groups={"static": static_site.backend.target_group.arn_suffix,
                       "app": app.backend.target_group.arn_suffix},
        services={"static": static_site.service.name, "app": app.service.name},
        file_system_id=volume.file_system.id, distribution_id=proxy.distribution_id))
    pulumi.export("hostname", proxy.hostname)
    pulumi.export("alb_dns_name", proxy.dns_name)
    pulumi.export("alb_zone_id", proxy.zone_id)
    pulumi.export("dns_record", {"type": "ALIAS", "name": aws_settings.domain_name or None,
                                 "target": proxy.alias_target, "zone_id": proxy.alias_zone_id})
    pulumi.export("dashboard_url", dashboard.url)
    if aws_settings.cdn:
        pulumi.export("cdn_domain_name", proxy.cdn_domain_name)
else:
    pulumi.export("hostname", common.hostname)
    pulumi.export("port", docker_settings.http_port)
    pulumi.export("stats_url", proxy.stats_url)
    pulumi.export("dns_record", {"type": "A", "name": common.hostname,
                                 "target": client_address(docker_settings.bind_address)})
