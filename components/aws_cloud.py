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
# The ECS agent runs in the host's network namespace, one hop from the metadata service; nothing else on the
# instance needs it. awsvpc tasks reach it through their own ENI whatever the hop limit, so
# ECS_AWSVPC_BLOCK_IMDS below is what keeps them from the instance role: they use their task roles.
METADATA_HOP_LIMIT = 1
USER_DATA = """#!/bin/bash
cat >>/etc/ecs/ecs.config <<'CONFIG'
ECS_CLUSTER={cluster}
ECS_AWSVPC_BLOCK_IMDS=true
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
        if len(zones) < args.az_count:
            raise ValueError(f"companynews:azCount = {args.az_count}: region {args.region} has only {len(zones)} "
                             f"zones available ({', '.join(zones)}); set azCount to at most {len(zones)}")
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
        for index, (zone, subnet) in enumerate(zip(self.zones, private_subnets)):
            nat = nat_gateways[index if args.nat_per_az else 0]
            routes = aws.ec2.RouteTable(
                f"private-routes-{zone}", vpc_id=self.vpc.id,
                routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nat.id)],
                tags={"Name": f"companynews-{args.stack}-private-{zone}"}, opts=child)
            aws.ec2.RouteTableAssociation(f"private-{zone}", subnet_id=subnet.id, route_table_id=routes.id,
                                          opts=child)

    # --- cluster and capacity ---------------------------------------------------------------------------

    def _build_cluster(self) -> None:
        args = self.args
        child = self.options(self)
        self.cluster = aws.ecs.Cluster(
            "cluster", settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value="enabled")], opts=child)

        role = aws.iam.Role("container-instance", assume_role_policy=policy_document({
            "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}),
            opts=child)
        for policy in ("service-role/AmazonEC2ContainerServiceforEC2Role", "AmazonSSMManagedInstanceCore"):
            aws.iam.RolePolicyAttachment(f"container-instance-{policy.rsplit('/', 1)[-1]}", role=role.name,
                                         policy_arn=f"arn:{self.partition}:iam::aws:policy/{policy}", opts=child)
        profile = aws.iam.InstanceProfile("container-instance", role=role.name, opts=child)

        # No ingress at all: the instances are reached through SSM Session Manager, which they dial out to.
        self.instance_security_group = self.security_group(
            "container-instances", "ECS container instances: no ingress, HTTPS out (ECS, ECR, logs, SSM)", self)
        aws.vpc.SecurityGroupEgressRule(
            "container-instances-https-out", security_group_id=self.instance_security_group.id,
            ip_protocol="tcp", from_port=443, to_port=443, cidr_ipv4="0.0.0.0/0",
            description="AWS APIs and image layers through the NAT gateway", opts=child)

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

        self.auto_scaling_group = aws.autoscaling.Group(
            "container-instances",
            min_size=args.min_instances,
            max_size=args.max_instances,
            vpc_zone_identifiers=self.private_subnet_ids,
            launch_template=aws.autoscaling.GroupLaunchTemplateArgs(
                id=launch_template.id, version=launch_template.latest_version.apply(str)),
            health_check_type="EC2",
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

    def _build_alarm_topic(self) -> aws.sns.Topic | None:
        if not self.args.alarm_email:
            return None
        child = self.options(self)
        # No KMS key on the topic: CloudWatch cannot publish to one encrypted with the AWS-managed SNS key.
        topic = aws.sns.Topic("alarms", opts=child)
        aws.sns.TopicSubscription("alarms-email", topic=topic.arn, protocol="email", endpoint=self.args.alarm_email,
                                  opts=child)
        return topic

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
        """Run one tier as an ECS service on the cluster's EC2 capacity: awsvpc in the private subnets,
        read-only root, no capabilities, non-root, health-checked, logging to its own group, behind its
        target group, rolled back by the circuit breaker when a deployment does not become healthy."""
        log_group = self.log_group(spec.tier, parent)
        execution_role = self._execution_role(spec.tier, log_group, parent)
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
                "tmpfs": [{"containerPath": "/tmp", "size": spec.tmpfs_size_mb,
                           "mountOptions": ["rw", "nosuid", "nodev", "noexec"]}],
            },
            "dockerSecurityOptions": ["no-new-privileges"],
            "ulimits": [{"name": "nproc", "softLimit": self.args.process_limit,
                         "hardLimit": self.args.process_limit}],
            "healthCheck": {"command": list(HEALTHCHECK_COMMAND), "interval": 10, "timeout": 5, "retries": 3,
                            "startPeriod": spec.health_start_period_seconds},
            "stopTimeout": spec.stop_timeout_seconds,
            "mountPoints": list(spec.mount_points),
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": log_group.name,
                "awslogs-region": self.args.region,
                "awslogs-stream-prefix": spec.tier,
                # A slow CloudWatch must not stall the server writing to stdout.
                "mode": "non-blocking",
                "max-buffer-size": "25m",
            }},
        }
        task_definition = aws.ecs.TaskDefinition(
            f"{spec.tier}-task",
            family=f"companynews-{self.args.stack}-{spec.tier}",
            network_mode="awsvpc",
            requires_compatibilities=["EC2"],
            execution_role_arn=execution_role.arn,
            task_role_arn=spec.task_role.arn if spec.task_role is not None else None,
            container_definitions=pulumi.Output.json_dumps([container]),
            volumes=list(spec.volumes),
            opts=self.options(parent))
        return aws.ecs.Service(
            f"{spec.tier}-service",
            cluster=self.cluster.arn,
            task_definition=task_definition.arn,
            desired_count=spec.desired_count,
            deployment_maximum_percent=spec.deployment_maximum_percent,
            deployment_minimum_healthy_percent=spec.deployment_minimum_healthy_percent,
            deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(enable=True, rollback=True),
            capacity_provider_strategies=[aws.ecs.ServiceCapacityProviderStrategyArgs(
                capacity_provider=self.capacity_provider.name, weight=1, base=0)],
            network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
                subnets=self.private_subnet_ids, assign_public_ip=False,
                security_groups=[spec.backend.security_group.id, *spec.security_groups]),
            load_balancers=[aws.ecs.ServiceLoadBalancerArgs(
                target_group_arn=spec.backend.routed_arn, container_name=spec.tier,
                container_port=spec.backend.port)],
            health_check_grace_period_seconds=spec.health_check_grace_seconds,
            ordered_placement_strategies=[aws.ecs.ServiceOrderedPlacementStrategyArgs(
                type="spread", field="attribute:ecs.availability-zone")],
            availability_zone_rebalancing="ENABLED" if spec.az_rebalancing else "DISABLED",
            enable_ecs_managed_tags=True,
            propagate_tags="SERVICE",
            # `pulumi up` returns once the tasks are healthy in their target group, or fails after the rollback.
            wait_for_steady_state=True,
            opts=self.options(parent, depends_on=[self.cluster_capacity, *spec.depends_on],
                              ignore_changes=["desiredCount"] if spec.autoscaled else None))

    def alarm(self, name: str, parent: pulumi.Resource, **metric_alarm_args: Any) -> aws.cloudwatch.MetricAlarm:
        """A CloudWatch alarm that mails alarmEmail (when set) on alarm and on recovery."""
        actions = [self.alarm_topic.arn] if self.alarm_topic is not None else []
        return aws.cloudwatch.MetricAlarm(
            name, alarm_actions=actions, ok_actions=actions, opts=self.options(parent), **metric_alarm_args)
