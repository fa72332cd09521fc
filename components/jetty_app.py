"""JettyApp: the companyNews war on Jetty 9.4; one replica writes, the others wait as hot standbys."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_docker as docker

from components import constants
from components.artifacts import stage_build_context
from components.aws_cloud import AwsCloud, Backend, TaskSpec
from components.docker_host import (APP_SLOTS, LABEL_RELEASE, LABEL_SLOT, ContainerSpec, DockerHost, choose_slot,
                                    running_slots)
from components.prevayler_volume import SharedPrevaylerVolume
from components.releases import LABEL_WAR_SHA256

DATA_VOLUME = "prevayler-data"
APP_CPU_UNITS = 1024
# Container Insights publishes once a minute; a deploy (stop, then start) keeps the count at 0 for about
# two or three minutes, so only a longer gap pages anyone.
NO_WRITER_ALARM_MINUTES = 5
# A release (and the replacement of an unhealthy writer) stops the old task before it starts the new one. ECS
# cannot hand over without a gap (docs/single-writer.md, "Release hand-over (production)"): with
# minimumHealthyPercent 100 ECS keeps the old task until the new one passes the load balancer's check, which a
# standby cannot (it listens only once it holds the lock), so every release would stall; and with
# maximumPercent 200 ECS replaces an unhealthy task by starting the replacement first and stopping the unhealthy
# one only once the replacement is healthy
# (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeploymentConfiguration.html), so a hung writer
# that still holds the lock would wait, with no documented bound, for a replacement that cannot become healthy
# while it lives. 100 / 0: stop, then start.
APP_DEPLOYMENT_MAXIMUM_PERCENT = 100
APP_DEPLOYMENT_MINIMUM_HEALTHY_PERCENT = 0
# ECS stops a deregistered writer once its target is drained, at most this long after, so posts in flight
# finish (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/load-balancer-connection-draining.html).
# Every second of it is write outage in a release: short, but long enough for a 3.5 MB /Read.action to a slow
# reader.
APP_DEREGISTRATION_DELAY_SECONDS = 30
# docker: the writer's SIGTERM closes its journal; a replacement, a scale-down or `make down` waits for that.
APP_STOP_GRACE_SECONDS = 30


@dataclass(frozen=True)
class JettyAppArgs:
    platform: DockerHost | AwsCloud
    image_dir: Path             # docker/app
    war: Path                   # the verified companyNews.war
    war_sha256: str             # its sha256 (its entry in the artifact cache)
    context_dir: Path
    replicas: int               # validated in settings.py; the image's lock keeps it to one writer (aws: 1)
    memory_mb: int
    volume: SharedPrevaylerVolume
    data_free_floor_kib: int = 0            # validated in settings.py; the image's health check reads it
    health_check_grace_seconds: int = 150   # aws: how long Jetty may take to start before health checks count
    stop_timeout_seconds: int = 60          # aws: time between SIGTERM and SIGKILL, to close the journal


class JettyApp(pulumi.ComponentResource):
    """The app tier. Docker: `servers` lists every replica, of which only the lock holder listens.
    AWS: one task, never two, behind `backend`'s target group, with the data mounted from EFS."""

    servers: list[str]

    def __init__(self, name: str, args: JettyAppArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("companynews:index:JettyApp", name, None, opts)
        context = stage_build_context(args.image_dir, args.context_dir, {"companyNews.war": args.war})
        image = args.platform.image(
            "app", context, {"APP_UID": str(constants.APP_UID), "APP_GID": str(constants.APP_GID)}, parent=self)
        self.servers = []
        self.containers = []
        if isinstance(args.platform, DockerHost):
            self._on_docker(args.platform, args, image, context)
            self.register_outputs({"servers": self.servers, "slot": self.slot, "release": self.release})
        else:
            self._on_aws(args.platform, args, image.repo_digest)
            self.register_outputs({"service_name": self.service.name})

    def _on_docker(self, host: DockerHost, args: JettyAppArgs, image: docker.Image, context: Path) -> None:
        template = ContainerSpec(
            name="app",
            role="app",
            image=image.repo_digest,
            address="",
            alias=constants.APP_ALIAS,
            user=f"{constants.APP_UID}:{constants.APP_GID}",
            memory_mb=args.memory_mb,
            envs=[f"DATA_FREE_FLOOR_KIB={args.data_free_floor_kib}"],
            mounts=[docker.ContainerMountArgs(
                type="volume", source=args.volume.volume_name, target=constants.DATA_PATH)],
            # Jetty needs tens of seconds on a cold start; a standby is healthy at once.
            health_start_period="120s",
            tmpfs_size_mb=128,
            stop_grace_seconds=APP_STOP_GRACE_SECONDS,
        )
        # A release is everything that makes the app containers what they are, except how many there are:
        # the staged build context (war and docker/app, named by their digest), the image's build arguments
        # and base, and the container settings. A new release goes to the other slot (choose_slot), so
        # the engine creates its containers beside the old ones instead of replacing them in place
        # (delete-before-replace for an explicitly named container: pulumi-terraform-bridge
        # pkg/tfbridge/schema.go, nameRequiresDeleteBeforeReplace, and pulumi-docker provider/resources.go
        # maps docker_container with DeleteBeforeReplace: true), which would stop writer and standby at once.
        self.release = release_key(context, host, template)
        self.slot = choose_slot(self.release, running_slots(host.args.stack, "app"))
        scale_down = host.stop_replicas_beyond("app", args.replicas, constants.MAX_APP_REPLICAS,
                                               APP_STOP_GRACE_SECONDS, parent=self, slot=self.slot)
        self.containers, _ = host.tier("app", args.replicas, constants.APP_PORT, dataclasses.replace(
            template, depends_on=[scale_down],
            # The war's sha256: what the release history (components/releases.py) records as serving.
            labels={LABEL_SLOT: self.slot, LABEL_RELEASE: self.release, LABEL_WAR_SHA256: args.war_sha256}),
            parent=self, slot=self.slot)
        # The front door knows both slots' addresses whatever the release, so a release never replaces it;
        # its balancer skips the addresses where nothing listens (docker/proxy/app_balancer.lua).
        self.servers = [f"{host.address('app', index, slot)}:{constants.APP_PORT}"
                        for slot in APP_SLOTS for index in range(args.replicas)]
        self.hand_over = host.hand_over("app", self.slot, APP_STOP_GRACE_SECONDS, after=self.containers,
                                        parent=self)

    def _on_aws(self, cloud: AwsCloud, args: JettyAppArgs, image: pulumi.Output[str]) -> None:
        child = cloud.options(self)
        volume = args.volume
        target_group = aws.lb.TargetGroup(
            "app",
            port=constants.APP_PORT,
            protocol="HTTP",
            target_type="ip",
            vpc_id=cloud.vpc.id,
            deregistration_delay=APP_DEREGISTRATION_DELAY_SECONDS,
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                enabled=True, protocol="HTTP", port="traffic-port", path=constants.APP_HEALTH_PATH,
                matcher="200", interval=10, timeout=5, healthy_threshold=2, unhealthy_threshold=3),
            opts=child)
        self.backend = Backend(
            target_group,
            cloud.security_group("app-tasks", "Jetty task of the app tier: in from the load balancer only", self),
            constants.APP_PORT)
        # On Fargate the task itself pulls its image and ships its logs: through the VPC's endpoints only, so a
        # compromised Struts still has no route to the internet.
        cloud.allow_aws_endpoints("app-tasks", self.backend.security_group, parent=self)
        # The task may mount and write this file system through this access point, and do nothing else.
        task_role = cloud.task_role("app", [volume.client_statement()], parent=self)
        file_system_policy = volume.admit_writer(task_role)

        self.service = cloud.service(TaskSpec(
            tier="app",
            image=image,
            user=f"{constants.APP_UID}:{constants.APP_GID}",
            memory_mb=args.memory_mb,
            cpu_units=APP_CPU_UNITS,
            backend=self.backend,
            environment={"DATA_FREE_FLOOR_KIB": str(args.data_free_floor_kib)},
            security_groups=[volume.client_security_group.id],
            # Prevayler has a single writer: two JVMs on one journal silently lose posts. So one task, and a
            # deploy stops the old task before it starts the new one (never 2 running, 0 allowed meanwhile).
            desired_count=1,
            deployment_maximum_percent=APP_DEPLOYMENT_MAXIMUM_PERCENT,
            deployment_minimum_healthy_percent=APP_DEPLOYMENT_MINIMUM_HEALTHY_PERCENT,
            health_check_grace_seconds=args.health_check_grace_seconds,
            stop_timeout_seconds=args.stop_timeout_seconds,
            # Rebalancing would start a second task in another zone before stopping the first.
            az_rebalancing=False,
            task_role=task_role,
            volumes=[aws.ecs.TaskDefinitionVolumeArgs(
                name=DATA_VOLUME,
                efs_volume_configuration=aws.ecs.TaskDefinitionVolumeEfsVolumeConfigurationArgs(
                    file_system_id=volume.file_system.id,
                    transit_encryption="ENABLED",
                    authorization_config=aws.ecs.TaskDefinitionVolumeEfsVolumeConfigurationAuthorizationConfigArgs(
                        access_point_id=volume.access_point.id, iam="ENABLED"),
                ),
            )],
            mount_points=[{"sourceVolume": DATA_VOLUME, "containerPath": constants.DATA_PATH, "readOnly": False}],
            # The entrypoint may first wait out a crashed writer's EFS lock lease (up to ~90 s), then Jetty starts.
            health_start_period_seconds=min(300, args.health_check_grace_seconds),
            tmpfs_size_mb=128,
            # The writer runs on Fargate: when the server under it fails, AWS (not an ECS agent of ours) reports
            # the task stopped, and the replacement needs no free slot on our instances
            # (docs/single-writer.md, "Failure timeline on AWS").
            fargate=True,
            depends_on=[*volume.mount_targets, file_system_policy],
        ), parent=self)

        cloud.alarm(
            "app-running-tasks", self,
            alarm_description="No companyNews writer task has run for "
                              f"{NO_WRITER_ALARM_MINUTES} minutes: the site cannot take posts",
            namespace="ECS/ContainerInsights",
            metric_name="RunningTaskCount",
            dimensions={"ClusterName": cloud.cluster.name, "ServiceName": self.service.name},
            statistic="Minimum",
            period=60,
            evaluation_periods=NO_WRITER_ALARM_MINUTES,
            threshold=1,
            comparison_operator="LessThanThreshold",
            # No data means no task reported: as bad as zero.
            treat_missing_data="breaching",
        )


def release_key(context: Path, host: DockerHost, template: ContainerSpec) -> str:
    """16 hex digits naming one release of the app tier: equal exactly when the app containers would be
    equal, whatever the replica count. The context folder's name carries the digest of its content (war and
    docker/app: stage_build_context); the base image's ID is a build argument of the image."""
    spec = {item.name: getattr(template, item.name) for item in dataclasses.fields(template)
            if item.name not in ("name", "address", "image", "depends_on", "labels")}
    # The data volume's name is an Output; it follows from the stack, which the key need not name.
    spec["mounts"] = [(mount.type, mount.target) for mount in template.mounts]
    plain = {"context": context.name, "base_image": host.args.base_image, "base_image_id": host.base_image_id,
             "process_limit": host.args.process_limit, "spec": spec}
    # No default=: a value json cannot write (an Output) is an error here, never a key that differs per run.
    return hashlib.sha256(json.dumps(plain, sort_keys=True).encode()).hexdigest()[:16]

