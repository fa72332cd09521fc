"""SharedPrevaylerVolume: the one home of the app's Prevayler journals, kept when the stack is destroyed."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components import constants
from components.docker_host import DockerHost


@dataclass(frozen=True)
class SharedPrevaylerVolumeArgs:
    platform: DockerHost
    purge_on_destroy: bool      # false keeps the data through `pulumi destroy`


class SharedPrevaylerVolume(pulumi.ComponentResource):
    """Docker: a named volume mounted by every app replica; only the lock holder writes to it."""

    volume_name: pulumi.Output[str]

    def __init__(self, name: str, args: SharedPrevaylerVolumeArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("companynews:index:SharedPrevaylerVolume", name, None, opts)
        stack = args.platform.args.stack
        volume = docker.Volume(
            "data",
            name=f"companynews-{stack}-data",
            labels=[docker.VolumeLabelArgs(label=constants.LABEL_STACK, value=stack)],
            # Losing the journals loses every article, so destroy leaves the volume unless asked not to.
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=not args.purge_on_destroy),
        )
        self.volume_name = volume.name
        self.register_outputs({"volume_name": self.volume_name})
