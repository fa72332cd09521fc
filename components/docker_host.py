"""DockerHost: the training platform's shared pieces — the stack's network, fixed addresses, image builds,
and the one hardened way every container of the stack is run."""
from __future__ import annotations

import dataclasses
import ipaddress
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import pulumi
import pulumi_command as command
import pulumi_docker as docker

from components import constants

# Fixed host numbers inside the stack's subnet. The proxy addresses the tiers by IP, so a restarted
# container must come back at the same address (Docker hands out fresh ones otherwise).
PROXY_HOST_NUMBER = 10
FIRST_APP_HOST_NUMBER = 20
FIRST_STATIC_HOST_NUMBER = 40
# Blue/green release slots of the app tier (docs/single-writer.md, "Release hand-over (training)"): each
# slot has its own container names and addresses, so a release creates the new slot's containers beside
# the old ones instead of replacing them. Blue takes .20-.24 (the addresses of the unslotted app-<index> of
# earlier versions), green .25-.29.
APP_SLOTS = ("blue", "green")
LABEL_SLOT = "companynews.slot"
LABEL_RELEASE = "companynews.release"
HEALTHCHECK_COMMAND = ["CMD", "/usr/local/bin/healthcheck"]
# Inputs the provider would "update" in place without effect: its update (kreuzwerker
# terraform-provider-docker internal/provider/resource_docker_container_funcs.go, commit
# 1f7249d6fcb5395f8d3ad2f30976761a54f79d50, resourceDockerContainerUpdate) applies only restart, cpu and
# memory limits, and tmpfs and healthcheck are not ForceNew (resource_docker_container.go, commit
# 042f771a818e9d4b8c37fa2993a37b38b3822cab). A memory change must restart the container too: the JVM sizes
# its heap from the limit it starts under. So a change to any of these replaces the container.
REPLACE_ON_CHANGES = ["memory", "memorySwap", "tmpfs", "healthcheck"]
# The json-file driver's options are ForceNew and Docker merges the daemon's default log-opts into them, so
# on a host whose daemon.json sets any, every `up` would replace every container. The local driver rotates
# by itself (100 MB per container, compressed: docs.docker.com/engine/logging/drivers/local) and needs none.
LOG_DRIVER = "local"
GO_DURATION_UNITS = {"h": 3600, "m": 60, "s": 1}


def go_duration(text: str) -> str:
    """A whole-second duration ('120s', '2m') written as Go's time.Duration.String() writes it ('2m0s'): the
    provider reads the health check back in that form, and any other spelling is a diff on every preview."""
    seconds, number = 0, ""
    for character in text:
        if character.isdigit():
            number += character
        elif character in GO_DURATION_UNITS and number:
            seconds, number = seconds + int(number) * GO_DURATION_UNITS[character], ""
        else:
            raise ValueError(f"duration {text!r}: whole h, m and s only, e.g. 90s or 1m30s")
    if number:
        raise ValueError(f"duration {text!r} lacks a unit (h, m or s)")
    hours, rest = divmod(seconds, 3600)
    minutes, rest = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{rest}s"
    return f"{minutes}m{rest}s" if minutes else f"{rest}s"


def running_slots(stack: str, role: str) -> list[tuple[str, str, str]]:
    """(slot, release, created) of each running container of `role` in `stack`, newest first, as the local
    Docker engine has them now; [] when it has none or cannot say. A container of an earlier, unslotted
    version has the slot ''."""
    try:
        found = subprocess.run(
            ["docker", "ps", "--filter", f"label={constants.LABEL_STACK}={stack}",
             "--filter", f"label={constants.LABEL_ROLE}={role}",
             "--format", f'{{{{.Label "{LABEL_SLOT}"}}}}\t{{{{.Label "{LABEL_RELEASE}"}}}}\t{{{{.CreatedAt}}}}'],
            capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    if found.returncode != 0:
        return []
    rows = [tuple(line.split("\t")) for line in found.stdout.splitlines() if line.count("\t") == 2]
    return sorted(rows, key=lambda row: row[2], reverse=True)


def choose_slot(release: str, running: Sequence[tuple[str, ...]]) -> str:
    """The slot a release's app containers go to: the slot already running this very release (nothing to
    change), else the slot the newest running container is not in, else blue.

    Decided when the program runs, from the live containers' labels, because logical names cannot come from
    Outputs: so `pulumi preview` shows the hand-over, and a plain `up` after a new war does it. Newest first
    covers an interrupted hand-over (both slots running): the newer slot holds standbys that never took
    over, and the next release goes there rather than next to them. An unslotted container counts as blue
    (it sits at blue's addresses)."""
    for slot, running_release, _ in running:
        if running_release == release and slot in APP_SLOTS:
            return slot
    if not running:
        return APP_SLOTS[0]
    newest = running[0][0] or APP_SLOTS[0]
    return APP_SLOTS[1] if newest == APP_SLOTS[0] else APP_SLOTS[0]


def local_image_id(reference: str) -> str:
    """The ID of the image Docker has here under `reference`; '' when it has none (yet) or cannot say."""
    try:
        found = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", reference],
                               capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return found.stdout.strip() if found.returncode == 0 else ""


@dataclass(frozen=True)
class DockerHostArgs:
    stack: str
    subnet: str                 # validated in settings.py
    base_image: str
    process_limit: int


@dataclass(frozen=True)
class ContainerSpec:
    """What differs between the stack's containers; everything else is the same hardened default."""

    name: str
    role: str                   # one of constants.ROLES
    image: pulumi.Input[str]
    address: str | None         # on the stack's network; None on the host's
    alias: str | None
    user: str
    memory_mb: int
    envs: Sequence[pulumi.Input[str]] = ()
    ports: Sequence[docker.ContainerPortArgs] = ()
    mounts: Sequence[docker.ContainerMountArgs] = ()
    health_start_period: str = "10s"
    tmpfs_size_mb: int = 64
    # Seconds between docker stop's SIGTERM and its SIGKILL when the container is replaced or destroyed
    # (destroy_grace_seconds): the writer closes its journal, nginx flushes its buffered logs.
    stop_grace_seconds: int = 10
    depends_on: Sequence[pulumi.Resource] = field(default_factory=list)
    # The host's network namespace instead of the stack's network: no published ports (the container
    # listens on host addresses itself), and no Docker userland proxy in front of it.
    host_network: bool = False
    # Labels beyond stack and role (the app's slot and release).
    labels: Mapping[str, str] = field(default_factory=dict)


class DockerHost(pulumi.ComponentResource):
    """The user-defined network of one stack and the factory for its images and containers."""

    network: docker.Network

    def __init__(self, name: str, args: DockerHostArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("companynews:index:DockerHost", name, None, opts)
        self.args = args
        self._hosts = list(ipaddress.IPv4Network(args.subnet).hosts())
        # An image is rebuilt only when its inputs change (pulumi-docker's native Image diffs its inputs and
        # the build context's digest: provider/provider.go, Check and Diff), so the base image's ID is one of
        # them: a newer base (scripts/stack pulls it before each `make up`) rebuilds every image.
        self.base_image_id = local_image_id(args.base_image)
        self.network = docker.Network(
            "network",
            name=f"companynews-{args.stack}",
            driver="bridge",
            ipam_configs=[docker.NetworkIpamConfigArgs(subnet=args.subnet)],
            labels=[docker.NetworkLabelArgs(label=constants.LABEL_STACK, value=args.stack)],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"network_name": self.network.name})

    def address(self, role: str, index: int = 0, slot: str = "") -> str:
        first = {"proxy": PROXY_HOST_NUMBER, "app": FIRST_APP_HOST_NUMBER, "static": FIRST_STATIC_HOST_NUMBER}[role]
        if slot:
            first += APP_SLOTS.index(slot) * constants.MAX_APP_REPLICAS
        return str(self._hosts[first - 1 + index])

    def image(self, tier: str, context: Path, build_args: Mapping[str, str], parent: pulumi.Resource) -> docker.Image:
        """Build docker/<tier> (staged with its artifacts) locally; nothing is pushed anywhere."""
        return docker.Image(
            f"{tier}-image",
            image_name=f"companynews-{self.args.stack}-{tier}:latest",
            skip_push=True,
            build=docker.DockerBuildArgs(
                context=str(context),
                args={"BASE_IMAGE": self.args.base_image, "BASE_IMAGE_ID": self.base_image_id, **build_args},
            ),
            opts=pulumi.ResourceOptions(parent=parent),
        )

    def container_name(self, name: str) -> str:
        return f"companynews-{self.args.stack}-{name}"

    def stop_replicas_beyond(self, role: str, replicas: int, most: int, grace_seconds: int,
                             parent: pulumi.Resource, slot: str = "") -> command.local.Command:
        """Stop `<role>-<replicas>` … `<role>-<most - 1>` (those that exist) whenever the count changes,
        before the tier's containers and the proxy are touched.

        The engine deletes what the program no longer declares last, after the new proxy's smoke check. When
        the app writer is one of the replicas being dropped, the new proxy would forward only to standbys,
        which wait for the writer's lock forever: the check, and the `up`, would fail. Stopped first (with
        the grace period), the writer closes its journal and a kept replica takes the lock; the engine then
        deletes the stopped containers."""
        prefix = f"{role}-{slot}" if slot else role
        extra = [self.container_name(f"{prefix}-{index}") for index in range(replicas, most)]
        return command.local.Command(
            f"{role}-scale-down",
            # Best effort: on a new stack, or when scaling up, none of them exists.
            create=(f"docker stop --time {grace_seconds} {' '.join(extra)} >/dev/null 2>&1 || true"
                    if extra else "true"),
            triggers=[replicas],
            opts=pulumi.ResourceOptions(parent=parent),
        )

    def tier(self, role: str, replicas: int, port: int, template: ContainerSpec,
             parent: pulumi.Resource, slot: str = "") -> tuple[list[docker.Container], list[str]]:
        """`replicas` containers `<role>-<index>` (with a slot: `<role>-<slot>-<index>`) from `template`, each
        at its fixed address; returns them and the ip:port list the proxy forwards to."""
        containers, servers = [], []
        prefix = f"{role}-{slot}" if slot else role
        for index in range(replicas):
            address = self.address(role, index, slot)
            spec = dataclasses.replace(template, name=f"{prefix}-{index}", role=role, address=address)
            containers.append(self.container(spec, parent))
            servers.append(f"{address}:{port}")
        return containers, servers

    def hand_over(self, role: str, slot: str, grace_seconds: int, after: Sequence[pulumi.Resource],
                  parent: pulumi.Resource) -> command.local.Command:
        """Once the new slot's containers run (standbys waiting on the writer lock), stop every container of
        the other slot, and of the unslotted tier of earlier versions: the old writer closes its journal
        within its grace period and a standby of the new slot takes the lock and serves.

        The engine would delete the old slot itself, at the end (pulumi/pulumi
        pkg/resource/deploy/step_generator.go, GenerateDeletes/ScheduleDeletes: what the program no longer
        declares is deleted after every create and update, independent deletes in parallel). Stopping it
        here, all at once (`docker stop` stops its arguments in parallel: docker/cli
        cli/command/container/stop.go, runStop's parallelOperation), keeps an old standby from taking
        the lock the old writer frees: a standby leaves at once on SIGTERM (docker/app/entrypoint), the
        writer needs its journal closed first. The engine then only removes stopped containers. Runs again
        whenever the slot changes (its trigger), and is a no-op when nothing of the other slot exists."""
        other = [name for name in APP_SLOTS if name != slot]
        names = [self.container_name(f"{role}-{old}-{index}") for old in other
                 for index in range(constants.MAX_APP_REPLICAS)]
        names += [self.container_name(f"{role}-{index}") for index in range(constants.MAX_APP_REPLICAS)]
        return command.local.Command(
            f"{role}-hand-over",
            # Best effort: on a new stack none of them exists.
            create=f"docker stop --time {grace_seconds} {' '.join(names)} >/dev/null 2>&1 || true",
            triggers=[slot],
            opts=pulumi.ResourceOptions(parent=parent, depends_on=list(after)),
        )

    def container(self, spec: ContainerSpec, parent: pulumi.Resource) -> docker.Container:
        """Run one container of the stack: read-only root, no capabilities, labelled, health-checked."""
        if spec.host_network and spec.ports:
            raise ValueError(f"{spec.name}: a container on the host's network publishes no ports; it listens "
                             f"on the host's addresses itself (drop ports, or host_network)")
        return docker.Container(
            spec.name,
            name=self.container_name(spec.name),
            image=spec.image,
            user=spec.user,
            envs=list(spec.envs),
            ports=list(spec.ports),
            mounts=list(spec.mounts),
            network_mode="host" if spec.host_network else None,
            networks_advanced=None if spec.host_network else [docker.ContainerNetworksAdvancedArgs(
                name=self.network.name, ipv4_address=spec.address, aliases=[spec.alias])],
            restart="unless-stopped",
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=HEALTHCHECK_COMMAND, interval=go_duration("5s"), timeout=go_duration("3s"), retries=3,
                start_period=go_duration(spec.health_start_period)),
            labels=[
                docker.ContainerLabelArgs(label=constants.LABEL_STACK, value=self.args.stack),
                docker.ContainerLabelArgs(label=constants.LABEL_ROLE, value=spec.role),
                *[docker.ContainerLabelArgs(label=key, value=value) for key, value in spec.labels.items()],
            ],
            read_only=True,
            # Everything that must write (pid files, caches, rendered config, JVM temp) writes to /tmp.
            tmpfs={"/tmp": f"rw,nosuid,nodev,noexec,size={spec.tmpfs_size_mb}m"},
            capabilities=docker.ContainerCapabilitiesArgs(drops=["ALL"]),
            security_opts=["no-new-privileges:true"],
            memory=spec.memory_mb,
            memory_swap=spec.memory_mb,
            # docker.Container has no pids-limit input; RLIMIT_NPROC bounds the processes of the user instead.
            ulimits=[docker.ContainerUlimitArgs(name="nproc", soft=self.args.process_limit,
                                                hard=self.args.process_limit)],
            log_driver=LOG_DRIVER,
            destroy_grace_seconds=spec.stop_grace_seconds,
            opts=pulumi.ResourceOptions(parent=parent, depends_on=list(spec.depends_on),
                                        replace_on_changes=REPLACE_ON_CHANGES),
        )
