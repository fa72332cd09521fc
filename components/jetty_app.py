"""JettyApp: the companyNews war on Jetty 9.4; one replica writes, the others wait as hot standbys."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_docker as docker

from components import constants
from components.artifacts import stage_build_context
from components.docker_host import ContainerSpec, DockerHost
from components.prevayler_volume import SharedPrevaylerVolume


@dataclass(frozen=True)
class JettyAppArgs:
    platform: DockerHost
    image_dir: Path             # docker/app
    war: Path                   # the verified companyNews.war
    context_dir: Path
    replicas: int               # validated in settings.py; the image's lock keeps it to one writer
    memory_mb: int
    volume: SharedPrevaylerVolume


class JettyApp(pulumi.ComponentResource):
    """The app tier; `servers` lists every replica, of which only the lock holder listens."""

    servers: list[str]

    def __init__(self, name: str, args: JettyAppArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("companynews:index:JettyApp", name, None, opts)
        context = stage_build_context(args.image_dir, args.context_dir, {"companyNews.war": args.war})
        image = args.platform.image(
            "app", context, {"APP_UID": str(constants.APP_UID), "APP_GID": str(constants.APP_GID)}, parent=self)
        self.servers = []
        self.containers = []
        for index in range(args.replicas):
            address = args.platform.address("app", index)
            self.containers.append(args.platform.container(ContainerSpec(
                name=f"app-{index}",
                role="app",
                image=image.repo_digest,
                address=address,
                alias=constants.APP_ALIAS,
                user=f"{constants.APP_UID}:{constants.APP_GID}",
                memory_mb=args.memory_mb,
                mounts=[docker.ContainerMountArgs(
                    type="volume", source=args.volume.volume_name, target=constants.DATA_PATH)],
                # Jetty needs tens of seconds on a cold start; a standby is healthy at once.
                health_start_period="120s",
                tmpfs_size_mb=128,
            ), parent=self))
            self.servers.append(f"{address}:{constants.APP_PORT}")
        self.register_outputs({"servers": self.servers})
