"""StaticSite: nginx replicas serving the contents of static.zip at /styles/* and /images/*."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi

from components import constants
from components.artifacts import stage_build_context
from components.docker_host import ContainerSpec, DockerHost


@dataclass(frozen=True)
class StaticSiteArgs:
    platform: DockerHost
    image_dir: Path             # docker/static
    site_dir: Path              # the archive's unpacked static/ folder
    context_dir: Path           # where the build context is staged
    replicas: int               # validated in settings.py
    memory_mb: int


class StaticSite(pulumi.ComponentResource):
    """The static tier; `servers` lists the ip:port the proxy forwards static paths to."""

    servers: list[str]

    def __init__(self, name: str, args: StaticSiteArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("companynews:index:StaticSite", name, None, opts)
        context = stage_build_context(args.image_dir, args.context_dir, {"site": args.site_dir})
        image = args.platform.image("static", context, {"STATIC_UID": str(constants.STATIC_UID)}, parent=self)
        self.servers = []
        self.containers = []
        for index in range(args.replicas):
            address = args.platform.address("static", index)
            self.containers.append(args.platform.container(ContainerSpec(
                name=f"static-{index}",
                role="static",
                image=image.repo_digest,
                address=address,
                alias=constants.STATIC_ALIAS,
                user=f"{constants.STATIC_UID}:{constants.STATIC_UID}",
                memory_mb=args.memory_mb,
            ), parent=self))
            self.servers.append(f"{address}:{constants.STATIC_PORT}")
        self.register_outputs({"servers": self.servers})
