"""ProxyTier: the front door — the only published port; routes static paths to StaticSite, the rest to
JettyApp; a password-protected stats page; a smoke check that fails the deploy if the door stays shut."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from components import constants
from components.artifacts import stage_build_context
from components.docker_host import ContainerSpec, DockerHost

SMOKE_CHECK_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "smoke-check"
SMOKE_CHECK_SECONDS = 180


@dataclass(frozen=True)
class ProxyTierArgs:
    platform: DockerHost
    image_dir: Path             # docker/proxy
    context_dir: Path
    static_servers: Sequence[str]
    app_servers: Sequence[str]
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
    backends: Sequence[pulumi.Resource] = field(default_factory=list)


def client_address(bind_address: str) -> str:
    """Where a client on this host reaches a port published on `bind_address`."""
    return "127.0.0.1" if bind_address in ("0.0.0.0", "::") else bind_address


class ProxyTier(pulumi.ComponentResource):
    """nginx front door; `url` resolves only after the smoke check saw /Read.action answer 200."""

    url: pulumi.Output[str]
    stats_url: pulumi.Output[str]

    def __init__(self, name: str, args: ProxyTierArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("companynews:index:ProxyTier", name, None, opts)
        context = stage_build_context(args.image_dir, args.context_dir, {})
        image = args.platform.image("proxy", context, {"PROXY_UID": str(constants.PROXY_UID)}, parent=self)
        envs = [
            f"STATIC_SERVERS={' '.join(args.static_servers)}",
            f"APP_SERVERS={' '.join(args.app_servers)}",
            args.stats_password.apply(lambda password: f"STATS_PASSWORD={password}"),
            f"POST_RATE_PER_MINUTE={args.post_rate_per_minute}",
            f"POST_BURST={args.post_burst}",
            f"POST_ALLOW_CIDRS={' '.join(args.post_allow_cidrs)}",
            f"CLIENT_MAX_BODY={args.client_max_body}",
            f"MICROCACHE_SECONDS={args.microcache_seconds}",
        ]
        self.container = args.platform.container(ContainerSpec(
            name="proxy",
            role="proxy",
            image=image.repo_digest,
            address=args.platform.address("proxy"),
            alias="proxy",
            user=f"{constants.PROXY_UID}:{constants.PROXY_UID}",
            memory_mb=args.memory_mb,
            envs=envs,
            ports=[
                docker.ContainerPortArgs(internal=constants.PROXY_PORT, external=args.http_port,
                                         ip=args.bind_address),
                # The stats page is for the operator on this host only, whatever bindAddress says.
                docker.ContainerPortArgs(internal=constants.PROXY_STATS_PORT, external=args.stats_port,
                                         ip="127.0.0.1"),
            ],
            # The micro-cache and its stale copies live in /tmp.
            tmpfs_size_mb=max(64, args.memory_mb // 2),
            depends_on=list(args.backends),
        ), parent=self)

        host = client_address(args.bind_address)
        base_url = f"http://{host}:{args.http_port}/"
        smoke_check = command.local.Command(
            "smoke-check",
            create=f"{sys.executable} {SMOKE_CHECK_SCRIPT} {base_url}Read.action --timeout {SMOKE_CHECK_SECONDS}",
            # Any replaced container means a new front door to prove.
            triggers=[self.container.id, *[backend.id for backend in args.backends
                                           if isinstance(backend, pulumi.CustomResource)]],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.container]),
        )
        self.url = smoke_check.stdout.apply(lambda _: base_url)
        self.stats_url = self.container.id.apply(lambda _: f"http://127.0.0.1:{args.stats_port}/")
        self.register_outputs({"url": self.url, "stats_url": self.stats_url})
