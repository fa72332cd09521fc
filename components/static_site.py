"""StaticSite: nginx replicas serving the contents of static.zip at /styles/* and /images/*."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws
from pulumi_aws.appautoscaling import PolicyTargetTrackingScalingPolicyConfigurationArgs as TargetTracking
from pulumi_aws.appautoscaling import (
    PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs as PredefinedMetric,
)

from components import constants
from components.artifacts import stage_build_context
from components.aws_cloud import AwsCloud, Backend, TaskSpec
from components.docker_host import ContainerSpec, DockerHost

# Reserved per task, in CPU units (1024 = one vCPU); target tracking keeps the average near the target.
STATIC_CPU_UNITS = 256
CPU_TARGET_PERCENT = 60


@dataclass(frozen=True)
class StaticSiteArgs:
    platform: DockerHost | AwsCloud
    image_dir: Path             # docker/static
    site_dir: Path              # the archive's unpacked static/ folder
    context_dir: Path           # where the build context is staged
    replicas: int               # validated in settings.py; on aws the starting task count
    memory_mb: int
    min_replicas: int | None = None     # aws: the autoscaling bounds (required there)
    max_replicas: int | None = None


class StaticSite(pulumi.ComponentResource):
    """The static tier. Docker: `servers` lists the ip:port the proxy forwards static paths to.
    AWS: an ECS service spread over the zones, scaled on CPU, behind `backend`'s target group."""

    servers: list[str]

    def __init__(self, name: str, args: StaticSiteArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("companynews:index:StaticSite", name, None, opts)
        context = stage_build_context(args.image_dir, args.context_dir, {"site": args.site_dir})
        image = args.platform.image("static", context, {"STATIC_UID": str(constants.STATIC_UID)}, parent=self)
        self.servers = []
        self.containers = []
        if isinstance(args.platform, DockerHost):
            self._on_docker(args.platform, args, image.repo_digest)
            self.register_outputs({"servers": self.servers})
        else:
            self._on_aws(args.platform, args, image.repo_digest)
            self.register_outputs({"service_name": self.service.name})

    def _on_docker(self, host: DockerHost, args: StaticSiteArgs, image: pulumi.Output[str]) -> None:
        self.containers, self.servers = host.tier("static", args.replicas, constants.STATIC_PORT, ContainerSpec(
            name="static",
            role="static",
            image=image,
            address="",
            alias=constants.STATIC_ALIAS,
            user=f"{constants.STATIC_UID}:{constants.STATIC_UID}",
            memory_mb=args.memory_mb,
        ), parent=self)

    def _on_aws(self, cloud: AwsCloud, args: StaticSiteArgs, image: pulumi.Output[str]) -> None:
        if args.min_replicas is None or args.max_replicas is None:
            raise TypeError("StaticSite on AWS needs min_replicas and max_replicas")
        child = cloud.options(self)
        target_group = aws.lb.TargetGroup(
            "static",
            port=constants.STATIC_PORT,
            protocol="HTTP",
            target_type="ip",
            vpc_id=cloud.vpc.id,
            # nginx answers in milliseconds; a draining task needs no more than this.
            deregistration_delay=15,
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                enabled=True, protocol="HTTP", port="traffic-port", path=constants.STATIC_HEALTH_PATH,
                matcher="200", interval=10, timeout=5, healthy_threshold=2, unhealthy_threshold=3),
            opts=child)
        self.backend = Backend(
            target_group,
            cloud.security_group("static-tasks", "nginx tasks of the static tier: in from the load balancer only",
                                 self),
            constants.STATIC_PORT)
        self.service = cloud.service(TaskSpec(
            tier="static",
            image=image,
            user=f"{constants.STATIC_UID}:{constants.STATIC_UID}",
            memory_mb=args.memory_mb,
            cpu_units=STATIC_CPU_UNITS,
            backend=self.backend,
            desired_count=args.replicas,
            # Rolling: new tasks come up beside the old ones, which leave once the new are healthy.
            deployment_maximum_percent=200,
            deployment_minimum_healthy_percent=100,
            health_check_grace_seconds=30,
            az_rebalancing=True,
            autoscaled=True,
        ), parent=self)

        scaling = aws.appautoscaling.Target(
            "static-scaling",
            service_namespace="ecs",
            scalable_dimension="ecs:service:DesiredCount",
            resource_id=pulumi.Output.concat("service/", cloud.cluster.name, "/", self.service.name),
            min_capacity=args.min_replicas,
            max_capacity=args.max_replicas,
            opts=child)
        aws.appautoscaling.Policy(
            "static-cpu",
            policy_type="TargetTrackingScaling",
            service_namespace=scaling.service_namespace,
            scalable_dimension=scaling.scalable_dimension,
            resource_id=scaling.resource_id,
            target_tracking_scaling_policy_configuration=TargetTracking(
                target_value=CPU_TARGET_PERCENT,
                predefined_metric_specification=PredefinedMetric(
                    predefined_metric_type="ECSServiceAverageCPUUtilization"),
                scale_out_cooldown=60,
                scale_in_cooldown=300,
            ),
            opts=child)
