"""AwsCloud: the production platform's shared pieces — the VPC, the ECS cluster on EC2 capacity, image
registries, log groups, security groups, alarms — and the one hardened way every ECS task of the stack runs."""
from __future__ import annotations

import base64
import ipaddress
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import pulumi
import pulumi_aws as aws
import pulumi_docker as docker

from components.docker_host import HEALTHCHECK_COMMAND

ECS_AMI_PARAMETER = "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"
# The VPC is cut into 16 equal subnets: zone i gets public slot i and private slot 8 + i (azCount <= 6).
SUBNET_SLOT_BITS = 4
FIRST_PRIVATE_SLOT = 8
ROOT_VOLUME_GB = 30
# Managed scaling keeps the instances this full of tasks (100: no idle instance beyond minInstances).
CAPACITY_TARGET_PERCENT = 100
INSTANCE_WARMUP_SECONDS = 180
# Instance refresh (a new AMI or any launch-template change): launch the replacement first, so the static tier
# never loses a slot, and replace scale-in-protected instances too (ECS protects every instance with tasks).
REFRESH_MIN_HEALTHY_PERCENT = 100
REFRESH_MAX_HEALTHY_PERCENT = 200
# The ASG publishes these to CloudWatch only when asked (the InService alarm and the dashboard read them).
GROUP_METRICS = ("GroupInServiceInstances", "GroupDesiredCapacity", "GroupMinSize")
# The writer on Fargate: platform 1.4.0 is the first to mount EFS (with access points, IAM and TLS); pinned.
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/efs-volumes.html
FARGATE_PLATFORM_VERSION = "1.4.0"
# Interface endpoints the Fargate writer pulls its image and ships its logs through, so that its tasks need no
# route to the internet (ECR keeps image layers in S3, reached through the gateway endpoint).
INTERFACE_ENDPOINT_SERVICES = ("ecr.api", "ecr.dkr", "logs")
# The container that opens a Fargate task's /tmp to the tier's uid before the tier starts (see service()).
SCRATCH_INIT_CONTAINER = "scratch-permissions"
SCRATCH_INIT_MEMORY_MB = 32
# The ECS agent runs in the host's network namespace, one hop from the metadata service; nothing else on the
# instance needs it. awsvpc tasks reach it through their own ENI whatever the hop limit, so
# ECS_AWSVPC_BLOCK_IMDS below is what keeps them from the instance role: they use their task roles.
METADATA_HOP_LIMIT = 1
# ECS_ENABLE_AWSLOGS_EXECUTIONROLE_OVERRIDE: on EC2 the awslogs driver writes with the instance role unless
# this is set; with it, each task's execution role (its own log group only) does, and the instance role needs
# no logs permission at all (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs-agent-config.html).
USER_DATA = """#!/bin/bash
cat >>/etc/ecs/ecs.config <<'CONFIG'
ECS_CLUSTER={cluster}
ECS_AWSVPC_BLOCK_IMDS=true
ECS_ENABLE_AWSLOGS_EXECUTIONROLE_OVERRIDE=true
CONFIG
"""


def partition_of(region: str) -> str:
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    if region.startswith("cn-"):
        return "aws-cn"
    return "aws"


def subnet_cidrs(vpc_cidr: str, az_count: int) -> tuple[list[str], list[str]]:
    """(public, private) subnet networks, one of each per zone, cut from the VPC's network."""
    slots = [str(net) for net in ipaddress.IPv4Network(vpc_cidr).subnets(prefixlen_diff=SUBNET_SLOT_BITS)]
    return slots[:az_count], slots[FIRST_PRIVATE_SLOT:FIRST_PRIVATE_SLOT + az_count]


def policy_document(*statements: Mapping[str, Any]) -> pulumi.Output[str]:
    """An IAM policy document; statements may hold Outputs (ARNs)."""
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": list(statements)})


@dataclass(frozen=True)
class AwsCloudArgs:
    stack: str
    region: str                 # validated in settings.py
    az_count: int
    vpc_cidr: str
    nat_per_az: bool
    instance_type: str
    min_instances: int
    max_instances: int
    log_retention_days: int
    ecr_keep_images: int
    alarm_email: str            # "" sends alarms nowhere
    base_image: str
    process_limit: int


class Backend:
    """A tier behind the load balancer: its target group, the security group of its tasks, their port.

    An ECS service can only register into a target group that a listener already forwards to, and the
    listeners belong to the proxy tier, declared after the tiers. So a tier's service takes `routed_arn`,
    which resolves only once the proxy tier has called `routed_by` with the listeners or rules that forward here.
    """

    def __init__(self, target_group: aws.lb.TargetGroup, security_group: aws.ec2.SecurityGroup, port: int):
        self.target_group = target_group
        self.security_group = security_group
        self.port = port
        self.routed_arn, self._resolve_routed_arn = pulumi.deferred_output()

    def routed_by(self, routes: Sequence[pulumi.CustomResource]) -> None:
        self._resolve_routed_arn(
            pulumi.Output.all(self.target_group.arn, *[route.arn for route in routes]).apply(lambda arns: arns[0]))


@dataclass(frozen=True)
class TaskSpec:
    """What differs between the stack's ECS services; everything else is the same hardened default."""

    tier: str                   # one of constants.ROLES: names the service, its image, log group and roles
    image: pulumi.Input[str]
    user: str
    memory_mb: int
    cpu_units: int              # reserved for placement; also the base of the service's CPU utilisation
    backend: Backend
    desired_count: int
    deployment_maximum_percent: int
    deployment_minimum_healthy_percent: int
    health_check_grace_seconds: int
    security_groups: Sequence[pulumi.Input[str]] = ()   # besides backend.security_group
    stop_timeout_seconds: int = 30
    az_rebalancing: bool = True
    autoscaled: bool = False    # Application Auto Scaling owns desired_count after creation
    task_role: aws.iam.Role | None = None
    volumes: Sequence[aws.ecs.TaskDefinitionVolumeArgs] = ()
    mount_points: Sequence[Mapping[str, Any]] = ()
    health_start_period_seconds: int = 10
    tmpfs_size_mb: int = 64
    environment: Mapping[str, str] = field(default_factory=dict)
    depends_on: Sequence[pulumi.Resource] = field(default_factory=list)
    # True: run on Fargate (the writer: no instance of ours, no agent, no slot to wait for); False: on the
    # cluster's EC2 capacity.
    fargate: bool = False


def fargate_task_size(cpu_units: int, memory_mb: int) -> tuple[int, int]:
    """The smallest Fargate task size (cpu units, MiB) holding `cpu_units` and a container of `memory_mb`.

    Fargate sells fixed combinations: 1 vCPU with 2-8 GiB, 2 vCPU with 4-16 GiB, in 1 GiB steps
    (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size).
    """
    for cpu, low, high in ((1024, 2048, 8192), (2048, 4096, 16384)):
        if cpu >= cpu_units and memory_mb <= high:
            return cpu, max(low, -(-memory_mb // 1024) * 1024)
    raise ValueError(f"no Fargate size holds {cpu_units} cpu units and {memory_mb} MiB")


class AwsCloud(pulumi.ComponentResource):
    """One stack's network, ECS cluster and capacity, and the factory for its images, tasks and alarms."""

    vpc: aws.ec2.Vpc
    cluster: aws.ecs.Cluster

    def __init__(self, name: str, args: AwsCloudArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("companynews:index:AwsCloud", name, None, opts)
        self.args = args
        self.partition = partition_of(args.region)
        # Every AWS resource and lookup of the stack goes through this provider (the stack file refuses the
        # default one), so companynews:region alone decides where things are.
        self.provider = aws.Provider(
            "aws", region=args.region,
            default_tags=aws.ProviderDefaultTagsArgs(tags={"companynews:stack": args.stack, "managed-by": "pulumi"}),
            opts=pulumi.ResourceOptions(parent=self))
        self.account_id = aws.get_caller_identity_output(opts=self.invoke_options()).account_id
        self._repositories: dict[str, aws.ecr.Repository] = {}
        self._build_network()
        self._build_cluster()
        self.alarm_topic = self._build_alarm_topic()
        self._capacity_alarms()
        self.register_outputs({
            "vpc_id": self.vpc.id,
            "public_subnet_ids": self.public_subnet_ids,
            "private_subnet_ids": self.private_subnet_ids,
            "cluster_name": self.cluster.name,
        })

    # --- options ----------------------------------------------------------------------------------------

    def options(self, parent: pulumi.Resource, **extra: Any) -> pulumi.ResourceOptions:
        """Resource options for an AWS resource of the stack: its parent, this stack's provider, and `extra`."""
        return pulumi.ResourceOptions(parent=parent, provider=self.provider, **extra)

    def invoke_options(self) -> pulumi.InvokeOutputOptions:
        return pulumi.InvokeOutputOptions(provider=self.provider)

    # --- network ----------------------------------------------------------------------------------------

    def _build_network(self) -> None:
        args = self.args
        child = self.options(self)
        zones = aws.get_availability_zones(
            state="available",
            filters=[aws.GetAvailabilityZonesFilterArgs(name="opt-in-status", values=["opt-in-not-required"])],
            opts=pulumi.InvokeOptions(provider=self.provider)).names
        # Not every zone offers every instance type (t3 is not in us-east-1e): a subnet there would make the
        # auto scaling group's launches fail. Only zones that offer instanceType are used.
        # https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeInstanceTypeOfferings.html
        offered = set(aws.ec2.get_instance_type_offerings(
            location_type="availability-zone",
            filters=[aws.ec2.GetInstanceTypeOfferingsFilterArgs(name="instance-type", values=[args.instance_type])],
            opts=pulumi.InvokeOptions(provider=self.provider)).locations)
        zones = [zone for zone in zones if zone in offered]
        if len(zones) < args.az_count:
            raise ValueError(f"companynews:azCount = {args.az_count}: region {args.region} has only {len(zones)} "
                             f"zones available that offer {args.instance_type} ({', '.join(zones)}); set azCount "
                             f"to at most {len(zones)}, or pick an instanceType offered in more zones")
        self.zones = list(zones[:args.az_count])
        public_cidrs, private_cidrs = subnet_cidrs(args.vpc_cidr, args.az_count)

        self.vpc = aws.ec2.Vpc("vpc", cidr_block=args.vpc_cidr, enable_dns_support=True, enable_dns_hostnames=True,
                               tags={"Name": f"companynews-{args.stack}"}, opts=child)
        # The default security group would let anything that lands in it talk to everything else in it.
        aws.ec2.DefaultSecurityGroup("default-security-group", vpc_id=self.vpc.id, opts=child)
        gateway = aws.ec2.InternetGateway("internet-gateway", vpc_id=self.vpc.id, opts=child)

        public_subnets = []
        private_subnets = []
        for index, zone in enumerate(self.zones):
            public_subnets.append(aws.ec2.Subnet(
                f"public-{zone}", vpc_id=self.vpc.id, cidr_block=public_cidrs[index], availability_zone=zone,
                # Only the load balancer and the NAT gateways live here, and they bring their own addresses.
                map_public_ip_on_launch=False,
                tags={"Name": f"companynews-{args.stack}-public-{zone}", "tier": "public"}, opts=child))
            private_subnets.append(aws.ec2.Subnet(
                f"private-{zone}", vpc_id=self.vpc.id, cidr_block=private_cidrs[index], availability_zone=zone,
                map_public_ip_on_launch=False,
                tags={"Name": f"companynews-{args.stack}-private-{zone}", "tier": "private"}, opts=child))
        self.public_subnet_ids = [subnet.id for subnet in public_subnets]
        self.private_subnet_ids = [subnet.id for subnet in private_subnets]

        public_routes = aws.ec2.RouteTable(
            "public-routes", vpc_id=self.vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=gateway.id)],
            tags={"Name": f"companynews-{args.stack}-public"}, opts=child)
        for zone, subnet in zip(self.zones, public_subnets):
            aws.ec2.RouteTableAssociation(f"public-{zone}", subnet_id=subnet.id, route_table_id=public_routes.id,
                                          opts=child)

        # One NAT gateway per zone survives a zone outage; one shared NAT costs a third as much at two zones.
        nat_zones = self.zones if args.nat_per_az else self.zones[:1]
        nat_gateways = []
        for zone, subnet in zip(nat_zones, public_subnets):
            address = aws.ec2.Eip(f"nat-{zone}", domain="vpc", tags={"Name": f"companynews-{args.stack}-nat-{zone}"},
                                  opts=child)
            nat_gateways.append(aws.ec2.NatGateway(
                f"nat-{zone}", allocation_id=address.id, subnet_id=subnet.id,
                tags={"Name": f"companynews-{args.stack}-{zone}"},
                opts=self.options(self, depends_on=[gateway])))
        private_route_tables = []
        for index, (zone, subnet) in enumerate(zip(self.zones, private_subnets)):
            nat = nat_gateways[index if args.nat_per_az else 0]
            routes = aws.ec2.RouteTable(
                f"private-routes-{zone}", vpc_id=self.vpc.id,
                routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nat.id)],
                tags={"Name": f"companynews-{args.stack}-private-{zone}"}, opts=child)
            aws.ec2.RouteTableAssociation(f"private-{zone}", subnet_id=subnet.id, route_table_id=routes.id,
                                          opts=child)
            private_route_tables.append(routes)
        self.private_cidrs = private_cidrs
        self._build_endpoints(private_route_tables, private_subnets[:len(nat_zones)])

    def _build_endpoints(self, private_route_tables: Sequence[aws.ec2.RouteTable],
                         endpoint_subnets: Sequence[aws.ec2.Subnet]) -> None:
        """S3 through a free gateway endpoint (ECR's image layers no longer cross the NAT, at $0.045/GB), and
        ECR and CloudWatch Logs through interface endpoints, in the NAT's zones only (one zone's failure already
        stops the stack's outbound traffic there without natPerAz)."""
        args = self.args
        child = self.options(self)
        self.s3_endpoint = aws.ec2.VpcEndpoint(
            "s3", vpc_id=self.vpc.id, service_name=f"com.amazonaws.{args.region}.s3", vpc_endpoint_type="Gateway",
            route_table_ids=[table.id for table in private_route_tables],
            tags={"Name": f"companynews-{args.stack}-s3"}, opts=child)
        self.endpoint_security_group = self.security_group(
            "aws-endpoints",
            "Interface endpoints for ECR and CloudWatch Logs: HTTPS in from the writer tasks and instances", self)
        for service in INTERFACE_ENDPOINT_SERVICES:
            aws.ec2.VpcEndpoint(
                f"endpoint-{service.replace('.', '-')}", vpc_id=self.vpc.id,
                service_name=f"com.amazonaws.{args.region}.{service}", vpc_endpoint_type="Interface",
                private_dns_enabled=True, subnet_ids=[subnet.id for subnet in endpoint_subnets],
                security_group_ids=[self.endpoint_security_group.id],
                tags={"Name": f"companynews-{args.stack}-{service}"}, opts=child)

    def allow_aws_endpoints(self, name: str, source: aws.ec2.SecurityGroup, parent: pulumi.Resource) -> None:
        """Let members of `source` reach ECR, CloudWatch Logs and S3 through the VPC's endpoints, and nothing
        else on the internet: what a Fargate task needs to pull its image and ship its logs."""
        self.allow(f"{name}-endpoints", source=source, target=self.endpoint_security_group, port=443,
                   description="HTTPS to the ECR and CloudWatch Logs endpoints", parent=parent)
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-s3-out", security_group_id=source.id, prefix_list_id=self.s3_endpoint.prefix_list_id,
            ip_protocol="tcp", from_port=443, to_port=443,
            description="HTTPS to S3 (ECR image layers) through the gateway endpoint", opts=self.options(parent))

    # --- cluster and capacity ---------------------------------------------------------------------------

    def _build_cluster(self) -> None:
        args = self.args
        child = self.options(self)
        self.cluster = aws.ecs.Cluster(
            "cluster", settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value="enabled")], opts=child)

        role = aws.iam.Role("container-instance", assume_role_policy=policy_document({
            "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}),
            opts=child)
        # Session Manager, instead of SSH.
        aws.iam.RolePolicyAttachment("container-instance-AmazonSSMManagedInstanceCore", role=role.name,
                                     policy_arn=f"arn:{self.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore",
                                     opts=child)
        aws.iam.RolePolicy("container-instance-ecs-agent", role=role.id,
                           policy=self._agent_policy(), opts=child)
        profile = aws.iam.InstanceProfile("container-instance", role=role.name, opts=child)

        # No ingress at all: the instances are reached through SSM Session Manager, which they dial out to.
        self.instance_security_group = self.security_group(
            "container-instances", "ECS container instances: no ingress, HTTPS out (ECS, ECR, logs, SSM)", self)
        aws.vpc.SecurityGroupEgressRule(
            "container-instances-https-out", security_group_id=self.instance_security_group.id,
            ip_protocol="tcp", from_port=443, to_port=443, cidr_ipv4="0.0.0.0/0",
            description="AWS APIs and image layers through the NAT gateway", opts=child)
        # The endpoints' private DNS names apply to the whole VPC: the ECS agent's image pulls and log shipping
        # for the static tier resolve to them too, so the instances must be admitted as well.
        aws.vpc.SecurityGroupIngressRule(
            "aws-endpoints-from-container-instances", security_group_id=self.endpoint_security_group.id,
            referenced_security_group_id=self.instance_security_group.id, ip_protocol="tcp", from_port=443,
            to_port=443, description="HTTPS from the container instances (ECS agent pulls and logs)", opts=child)

        ami = aws.ssm.get_parameter_output(name=ECS_AMI_PARAMETER, opts=self.invoke_options())
        launch_template = aws.ec2.LaunchTemplate(
            "container-instance",
            image_id=ami.value,
            instance_type=args.instance_type,
            iam_instance_profile=aws.ec2.LaunchTemplateIamInstanceProfileArgs(arn=profile.arn),
            vpc_security_group_ids=[self.instance_security_group.id],
            user_data=self.cluster.name.apply(
                lambda cluster: base64.b64encode(USER_DATA.format(cluster=cluster).encode()).decode()),
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=METADATA_HOP_LIMIT),
            block_device_mappings=[aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                device_name="/dev/xvda",
                ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                    volume_size=ROOT_VOLUME_GB, volume_type="gp3", encrypted="true", delete_on_termination="true"),
            )],
            tag_specifications=[aws.ec2.LaunchTemplateTagSpecificationArgs(
                resource_type="instance", tags={"Name": f"companynews-{args.stack}-ecs"})],
            update_default_version=True,
            opts=child)
        self.launch_template = launch_template

        self.auto_scaling_group = aws.autoscaling.Group(
            "container-instances",
            min_size=args.min_instances,
            max_size=args.max_instances,
            vpc_zone_identifiers=self.private_subnet_ids,
            launch_template=aws.autoscaling.GroupLaunchTemplateArgs(
                id=launch_template.id, version=launch_template.latest_version.apply(str)),
            health_check_type="EC2",
            enabled_metrics=list(GROUP_METRICS),
            metrics_granularity="1Minute",
            # Any launch-template change (a new AMI from SSM on `up`, an instance type) rolls the instances:
            # a new one is launched and in service before an old one is drained by ECS and terminated.
            # https://docs.aws.amazon.com/autoscaling/ec2/userguide/asg-instance-refresh.html
            instance_refresh=aws.autoscaling.GroupInstanceRefreshArgs(
                strategy="Rolling",
                preferences=aws.autoscaling.GroupInstanceRefreshPreferencesArgs(
                    min_healthy_percentage=REFRESH_MIN_HEALTHY_PERCENT,
                    max_healthy_percentage=REFRESH_MAX_HEALTHY_PERCENT,
                    instance_warmup=str(INSTANCE_WARMUP_SECONDS),
                    scale_in_protected_instances="Refresh",
                    skip_matching=True,
                )),
            # Managed termination protection: ECS decides which instance may go, one without tasks.
            protect_from_scale_in=True,
            # Destroy must not wait for protected instances to be scaled in; it terminates them.
            force_delete=True,
            tags=[
                aws.autoscaling.GroupTagArgs(key="AmazonECSManaged", value="", propagate_at_launch=True),
                aws.autoscaling.GroupTagArgs(key="Name", value=f"companynews-{args.stack}-ecs",
                                             propagate_at_launch=True),
            ],
            opts=child)

        self.capacity_provider = aws.ecs.CapacityProvider(
            "ec2-capacity",
            auto_scaling_group_provider=aws.ecs.CapacityProviderAutoScalingGroupProviderArgs(
                auto_scaling_group_arn=self.auto_scaling_group.arn,
                managed_termination_protection="ENABLED",
                managed_draining="ENABLED",
                managed_scaling=aws.ecs.CapacityProviderAutoScalingGroupProviderManagedScalingArgs(
                    status="ENABLED", target_capacity=CAPACITY_TARGET_PERCENT, minimum_scaling_step_size=1,
                    maximum_scaling_step_size=2, instance_warmup_period=INSTANCE_WARMUP_SECONDS),
            ),
            opts=child)
        self.cluster_capacity = aws.ecs.ClusterCapacityProviders(
            "cluster-capacity",
            cluster_name=self.cluster.name,
            capacity_providers=[self.capacity_provider.name],
            default_capacity_provider_strategies=[
                aws.ecs.ClusterCapacityProvidersDefaultCapacityProviderStrategyArgs(
                    capacity_provider=self.capacity_provider.name, weight=1, base=0)],
            opts=child)

    def _agent_policy(self) -> pulumi.Output[str]:
        """What the ECS agent on an instance needs, on this cluster only: AWS's AmazonEC2ContainerServiceforEC2Role
        without its ECR pulls and log writes on `*` (the tasks' execution roles do both, scoped to their own
        repository and log group) and without ecs:CreateCluster.
        https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AmazonEC2ContainerServiceforEC2Role.html"""
        cluster_arn = self.cluster.arn
        instances_arn = pulumi.Output.all(cluster_arn, self.cluster.name).apply(
            lambda values: values[0].split(":cluster/")[0] + f":container-instance/{values[1]}/*")
        return policy_document(
            {"Effect": "Allow", "Action": ["ecs:RegisterContainerInstance", "ecs:DeregisterContainerInstance",
                                           "ecs:UpdateContainerInstancesState", "ecs:Submit*"],
             "Resource": cluster_arn},
            {"Effect": "Allow", "Action": ["ecs:Poll", "ecs:StartTelemetrySession"], "Resource": instances_arn},
            # No resource-level permission exists for these.
            {"Effect": "Allow", "Action": ["ecs:DiscoverPollEndpoint", "ec2:DescribeTags"], "Resource": "*"},
            {"Effect": "Allow", "Action": "ecs:TagResource", "Resource": "*",
             "Condition": {"StringEquals": {"ecs:CreateAction": "RegisterContainerInstance"}}},
        )

    def _build_alarm_topic(self) -> aws.sns.Topic | None:
        if not self.args.alarm_email:
            return None
        child = self.options(self)
        # No KMS key on the topic: CloudWatch cannot publish to one encrypted with the AWS-managed SNS key.
        topic = aws.sns.Topic("alarms", opts=child)
        aws.sns.TopicSubscription("alarms-email", topic=topic.arn, protocol="email", endpoint=self.args.alarm_email,
                                  opts=child)
        return topic

    def _capacity_alarms(self) -> None:
        """An instance lost and not replaced, and an instance whose ECS agent lost contact (its tasks stay
        RUNNING in ECS's view while nothing on it may work): both leave the static tier short."""
        self.alarm(
            "instances-below-minimum", self,
            alarm_description=f"fewer than minInstances ({self.args.min_instances}) container instances in "
                              f"service for 10 minutes",
            namespace="AWS/AutoScaling", metric_name="GroupInServiceInstances",
            dimensions={"AutoScalingGroupName": self.auto_scaling_group.name},
            statistic="Minimum", period=60, evaluation_periods=10, threshold=self.args.min_instances,
            comparison_operator="LessThanThreshold", treat_missing_data="breaching")
        # ECS publishes no metric for agent connectivity, only an event per state change
        # (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_container_instance_events.html);
        # EventBridge counts each rule's matches as AWS/Events MatchedEvents, which the alarm watches.
        disconnected = aws.cloudwatch.EventRule(
            "agent-disconnected",
            description="An ECS container instance of this cluster whose agent disconnected",
            event_pattern=pulumi.Output.json_dumps({
                "source": ["aws.ecs"], "detail-type": ["ECS Container Instance State Change"],
                "detail": {"clusterArn": [self.cluster.arn], "agentConnected": [False]}}),
            opts=self.options(self))
        self.alarm(
            "agent-disconnected", self,
            alarm_description="an ECS agent of the cluster disconnected: its instance takes no new task, and its "
                              "tasks may be gone while ECS still counts them",
            namespace="AWS/Events", metric_name="MatchedEvents", dimensions={"RuleName": disconnected.name},
            statistic="Sum", period=300, evaluation_periods=1, threshold=1,
            comparison_operator="GreaterThanOrEqualToThreshold", treat_missing_data="notBreaching")

    # --- factories for the tiers ------------------------------------------------------------------------

    def security_group(self, name: str, description: str, parent: pulumi.Resource) -> aws.ec2.SecurityGroup:
        """A security group with no rules at all (the provider removes AWS's default allow-all egress)."""
        return aws.ec2.SecurityGroup(
            name, vpc_id=self.vpc.id, description=description, revoke_rules_on_delete=True,
            tags={"Name": f"companynews-{self.args.stack}-{name}"}, opts=self.options(parent))

    def allow(self, name: str, *, source: aws.ec2.SecurityGroup, target: aws.ec2.SecurityGroup, port: int,
              description: str, parent: pulumi.Resource) -> None:
        """Let members of `source` open TCP connections to members of `target` on `port`, and nothing more."""
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-in", security_group_id=target.id, referenced_security_group_id=source.id,
            ip_protocol="tcp", from_port=port, to_port=port, description=description, opts=self.options(parent))
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-out", security_group_id=source.id, referenced_security_group_id=target.id,
            ip_protocol="tcp", from_port=port, to_port=port, description=description, opts=self.options(parent))

    def allow_internet(self, name: str, *, target: aws.ec2.SecurityGroup, port: int, description: str,
                       parent: pulumi.Resource) -> None:
        aws.vpc.SecurityGroupIngressRule(
            name, security_group_id=target.id, cidr_ipv4="0.0.0.0/0", ip_protocol="tcp", from_port=port,
            to_port=port, description=description, opts=self.options(parent))

    def image(self, tier: str, context: Path, build_args: Mapping[str, str], parent: pulumi.Resource) -> docker.Image:
        """Build docker/<tier> (staged with its artifacts) for x86_64 and push it to the tier's ECR repository."""
        repository = aws.ecr.Repository(
            f"{tier}-repository",
            name=f"companynews-{self.args.stack}-{tier}",
            # Mutable: every build is pushed as :latest, and tasks run the pushed digest, never the tag.
            image_tag_mutability="MUTABLE",
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
            encryption_configurations=[aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="AES256")],
            # The images are rebuilt from docker/ and the artifacts on every deploy; destroy may delete them.
            force_delete=True,
            opts=self.options(parent))
        aws.ecr.LifecyclePolicy(
            f"{tier}-repository-lifecycle",
            repository=repository.name,
            policy=json.dumps({"rules": [{
                "rulePriority": 1,
                "description": f"keep the last {self.args.ecr_keep_images} images",
                "selection": {"tagStatus": "any", "countType": "imageCountMoreThan",
                              "countNumber": self.args.ecr_keep_images},
                "action": {"type": "expire"},
            }]}),
            opts=self.options(parent))
        self._repositories[tier] = repository
        credentials = aws.ecr.get_authorization_token_output(
            registry_id=repository.registry_id, opts=self.invoke_options())
        return docker.Image(
            f"{tier}-image",
            image_name=repository.repository_url.apply(lambda url: f"{url}:latest"),
            build=docker.DockerBuildArgs(
                context=str(context),
                platform="linux/amd64",
                args={"BASE_IMAGE": self.args.base_image, **build_args},
            ),
            registry=docker.RegistryArgs(
                server=credentials.proxy_endpoint,
                username=credentials.user_name,
                password=pulumi.Output.secret(credentials.password),
            ),
            opts=pulumi.ResourceOptions(parent=parent),
        )

    def task_role(self, tier: str, statements: Sequence[Mapping[str, Any]], parent: pulumi.Resource) -> aws.iam.Role:
        """The role a tier's tasks act as, allowed exactly `statements`."""
        role = aws.iam.Role(f"{tier}-task", assume_role_policy=self._ecs_tasks_trust(), opts=self.options(parent))
        aws.iam.RolePolicy(f"{tier}-task", role=role.id, policy=policy_document(*statements),
                           opts=self.options(parent))
        return role

    def _ecs_tasks_trust(self) -> pulumi.Output[str]:
        # The SourceAccount condition keeps another account's ECS from assuming the role (confused deputy).
        return policy_document({
            "Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": self.account_id}},
        })

    def _execution_role(self, tier: str, log_group: aws.cloudwatch.LogGroup,
                        parent: pulumi.Resource) -> aws.iam.Role:
        """What the ECS agent needs to start the tier's tasks: pull its own image, write its own log group."""
        statements: list[Mapping[str, Any]] = [
            {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
             "Resource": log_group.arn.apply(lambda arn: f"{arn}:*")},
        ]
        repository = self._repositories.get(tier)
        if repository is not None:
            statements += [
                {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
                {"Effect": "Allow", "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage",
                                               "ecr:GetDownloadUrlForLayer"],
                 "Resource": repository.arn},
            ]
        role = aws.iam.Role(f"{tier}-execution", assume_role_policy=self._ecs_tasks_trust(),
                            opts=self.options(parent))
        aws.iam.RolePolicy(f"{tier}-execution", role=role.id, policy=policy_document(*statements),
                           opts=self.options(parent))
        return role

    def log_group(self, tier: str, parent: pulumi.Resource) -> aws.cloudwatch.LogGroup:
        return aws.cloudwatch.LogGroup(
            f"{tier}-logs", name=f"/companynews/{self.args.stack}/{tier}",
            retention_in_days=self.args.log_retention_days, opts=self.options(parent))

    def service(self, spec: TaskSpec, parent: pulumi.Resource) -> aws.ecs.Service:
        """Run one tier as an ECS service, on the cluster's EC2 capacity or on Fargate: awsvpc in the private
        subnets, read-only root, no capabilities, non-root, health-checked, logging to its own group, behind its
        target group, rolled back by the circuit breaker when a deployment does not become healthy."""
        log_group = self.log_group(spec.tier, parent)
        execution_role = self._execution_role(spec.tier, log_group, parent)
        # /tmp: a tmpfs on EC2. Fargate has no tmpfs (linuxParameters.tmpfs "isn't supported" there:
        # https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_LinuxParameters.html), so there /tmp is
        # a volume on the task's own ephemeral storage, gone with the task.
        scratch_volume = "scratch"
        tmpfs = [] if spec.fargate else [{"containerPath": "/tmp", "size": spec.tmpfs_size_mb,
                                          "mountOptions": ["rw", "nosuid", "nodev", "noexec"]}]
        scratch_mounts = [{"sourceVolume": scratch_volume, "containerPath": "/tmp", "readOnly": False}] \
            if spec.fargate else []
        container = {
            "name": spec.tier,
            "image": spec.image,
            "essential": True,
            "user": spec.user,
            "memory": spec.memory_mb,
            "cpu": spec.cpu_units,
            "portMappings": [{"containerPort": spec.backend.port, "protocol": "tcp"}],
            "environment": [{"name": name, "value": value} for name, value in sorted(spec.environment.items())],
            "readonlyRootFilesystem": True,
            "privileged": False,
            "linuxParameters": {
                "capabilities": {"drop": ["ALL"]},
                # Each image's entrypoint ends with exec: its server is PID 1 and handles SIGTERM itself.
                "initProcessEnabled": False,
                # Everything that must write (pid files, caches, the JVM's temp, the app's role file) uses /tmp.
                "tmpfs": tmpfs,
            },
            # Fargate refuses dockerSecurityOptions; its containers cannot gain privileges through a setuid
            # binary either way, as every capability is dropped.
            "dockerSecurityOptions": [] if spec.fargate else ["no-new-privileges"],
            "ulimits": [{"name": "nproc", "softLimit": self.args.process_limit,
                         "hardLimit": self.args.process_limit}],
            "healthCheck": {"command": list(HEALTHCHECK_COMMAND), "interval": 10, "timeout": 5, "retries": 3,
                            "startPeriod": spec.health_start_period_seconds},
            "stopTimeout": spec.stop_timeout_seconds,
            "mountPoints": [*spec.mount_points, *scratch_mounts],
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": log_group.name,
                "awslogs-region": self.args.region,
                "awslogs-stream-prefix": spec.tier,
                # A slow CloudWatch must not stall the server writing to stdout.
                "mode": "non-blocking",
                "max-buffer-size": "25m",
            }},
        }
        containers = [container]
        if spec.fargate:
            # Fargate creates a bind-mount volume owned by root, mode 0755, unless the image declares a VOLUME at
            # that path (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/bind-mounts.html), and the
            # tier runs as its own uid: a first container, root but without any capability (root owns the
            # directory, so chmod needs none), makes /tmp world-writable and sticky, as a tmpfs /tmp is, and exits;
            # the tier's container starts only after it succeeded.
            containers.insert(0, {
                "name": SCRATCH_INIT_CONTAINER,
                "image": spec.image,
                "essential": False,
                "user": "0:0",
                "memory": SCRATCH_INIT_MEMORY_MB,
                "entryPoint": ["chmod"],
                "command": ["1777", "/tmp"],
                "readonlyRootFilesystem": True,
                "linuxParameters": {"capabilities": {"drop": ["ALL"]}, "initProcessEnabled": False},
                "mountPoints": scratch_mounts,
                "logConfiguration": container["logConfiguration"],
            })
            container["dependsOn"] = [{"containerName": SCRATCH_INIT_CONTAINER, "condition": "SUCCESS"}]
            task_cpu, task_memory = fargate_task_size(spec.cpu_units, spec.memory_mb + SCRATCH_INIT_MEMORY_MB)
            platform = {"requires_compatibilities": ["FARGATE"], "cpu": str(task_cpu), "memory": str(task_memory),
                        "runtime_platform": aws.ecs.TaskDefinitionRuntimePlatformArgs(
                            operating_system_family="LINUX", cpu_architecture="X86_64")}
            volumes = [*spec.volumes, aws.ecs.TaskDefinitionVolumeArgs(name=scratch_volume)]
            placement = {"launch_type": "FARGATE", "platform_version": FARGATE_PLATFORM_VERSION}
        else:
            platform = {"requires_compatibilities": ["EC2"]}
            volumes = list(spec.volumes)
            placement = {
                "capacity_provider_strategies": [aws.ecs.ServiceCapacityProviderStrategyArgs(
                    capacity_provider=self.capacity_provider.name, weight=1, base=0)],
                "ordered_placement_strategies": [aws.ecs.ServiceOrderedPlacementStrategyArgs(
                    type="spread", field="attribute:ecs.availability-zone")],
            }
        task_definition = aws.ecs.TaskDefinition(
            f"{spec.tier}-task",
            family=f"companynews-{self.args.stack}-{spec.tier}",
            network_mode="awsvpc",
            execution_role_arn=execution_role.arn,
            task_role_arn=spec.task_role.arn if spec.task_role is not None else None,
            container_definitions=pulumi.Output.json_dumps(containers),
            volumes=volumes,
            opts=self.options(parent),
            **platform)
        return aws.ecs.Service(
            f"{spec.tier}-service",
            cluster=self.cluster.arn,
            task_definition=task_definition.arn,
            desired_count=spec.desired_count,
            deployment_maximum_percent=spec.deployment_maximum_percent,
            deployment_minimum_healthy_percent=spec.deployment_minimum_healthy_percent,
            deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(enable=True, rollback=True),
            network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
                subnets=self.private_subnet_ids, assign_public_ip=False,
                security_groups=[spec.backend.security_group.id, *spec.security_groups]),
            load_balancers=[aws.ecs.ServiceLoadBalancerArgs(
                target_group_arn=spec.backend.routed_arn, container_name=spec.tier,
                container_port=spec.backend.port)],
            health_check_grace_period_seconds=spec.health_check_grace_seconds,
            availability_zone_rebalancing="ENABLED" if spec.az_rebalancing else "DISABLED",
            enable_ecs_managed_tags=True,
            propagate_tags="SERVICE",
            # `pulumi up` returns once the tasks are healthy in their target group, or fails after the rollback.
            wait_for_steady_state=True,
            opts=self.options(parent, depends_on=[self.cluster_capacity, *spec.depends_on],
                              ignore_changes=["desiredCount"] if spec.autoscaled else None),
            **placement)

    def alarm(self, name: str, parent: pulumi.Resource, **metric_alarm_args: Any) -> aws.cloudwatch.MetricAlarm:
        """A CloudWatch alarm that mails alarmEmail (when set) on alarm and on recovery."""
        actions = [self.alarm_topic.arn] if self.alarm_topic is not None else []
        return aws.cloudwatch.MetricAlarm(
            name, alarm_actions=actions, ok_actions=actions, opts=self.options(parent), **metric_alarm_args)
