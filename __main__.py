"""The companyNews stack: validated settings in, the four components assembled, the output contract out."""
import os
from pathlib import Path

import pulumi

from components.artifacts import ArtifactSource, prepare_artifacts
from components.docker_host import DockerHost, DockerHostArgs
from components.jetty_app import JettyApp, JettyAppArgs
from components.prevayler_volume import SharedPrevaylerVolume, SharedPrevaylerVolumeArgs
from components.proxy_tier import ProxyTier, ProxyTierArgs, client_address
from components.settings import load_settings
from components.static_site import StaticSite, StaticSiteArgs

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

if common.platform != "docker":
    raise NotImplementedError("platform 'aws' is not implemented yet")
docker_settings = settings.docker
host = DockerHost("docker-host", DockerHostArgs(
    stack=settings.stack, subnet=docker_settings.docker_subnet, base_image=common.base_image,
    process_limit=common.process_limit))
volume = SharedPrevaylerVolume("prevayler-data", SharedPrevaylerVolumeArgs(
    platform=host, purge_on_destroy=docker_settings.purge_data_on_destroy))
static_site = StaticSite("static", StaticSiteArgs(
    platform=host, image_dir=IMAGES_DIR / "static", site_dir=artifacts.static_dir,
    context_dir=contexts_dir / "static", replicas=common.static_replicas, memory_mb=common.static_memory_mb))
app = JettyApp("app", JettyAppArgs(
    platform=host, image_dir=IMAGES_DIR / "app", war=artifacts.war, context_dir=contexts_dir / "app",
    replicas=docker_settings.app_replicas, memory_mb=common.app_memory_mb, volume=volume))
proxy = ProxyTier("proxy", ProxyTierArgs(
    platform=host, image_dir=IMAGES_DIR / "proxy", context_dir=contexts_dir / "proxy",
    static_servers=static_site.servers, app_servers=app.servers,
    http_port=docker_settings.http_port, bind_address=docker_settings.bind_address,
    stats_port=docker_settings.stats_port, stats_password=pulumi.Output.secret(docker_settings.stats_password),
    post_rate_per_minute=common.post_rate_per_minute, post_burst=common.post_burst,
    post_allow_cidrs=common.post_allow_cidrs, client_max_body=common.client_max_body,
    microcache_seconds=common.microcache_seconds, memory_mb=common.proxy_memory_mb,
    backends=[*static_site.containers, *app.containers]))

# The output contract (docs/outputs.md); DNS tooling reads these names, so renaming one is a breaking change.
pulumi.export("url", proxy.url)
pulumi.export("hostname", common.hostname)
pulumi.export("port", docker_settings.http_port)
pulumi.export("stats_url", proxy.stats_url)
pulumi.export("dns_record", {"type": "A", "name": common.hostname,
                             "target": client_address(docker_settings.bind_address)})
