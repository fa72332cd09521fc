"""The production stack as declared: what `pulumi up --stack production` asks of AWS, proven under mocks."""
from __future__ import annotations

import base64
import ipaddress
import json

import pulumi
import pytest

from components import constants
from components.settings import SettingsError
from tests.unit.mocks import ECS_AMI, RecordingMocks

SERVICE = "aws:ecs/service:Service"
TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
SECURITY_GROUP_INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SECURITY_GROUP_EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
LISTENER = "aws:lb/listener:Listener"
SECRET_SIGNATURE = "4dabf18193072939515e22adb298388d"  # how the mocks see a secret input
CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012"
WITH_DOMAIN = {"domainName": "news.example.com", "certificateArn": CERTIFICATE, "hostedZoneId": "Z0123456789ABC",
               "alarmEmail": "ops@example.com", "accessLogsBucket": "companynews-alb-logs",
               "allowPlainHttp": "false"}


@pytest.fixture(scope="module")
def production(local_artifacts):
    """The production stack with Pulumi.production.yaml as committed: HTTP only, no domain, no alarm mail."""
    from tests.program import run_program, stack_config

    mocks = RecordingMocks()
    exports = run_program(mocks, "production", stack_config("production", local_artifacts))
    return mocks, exports


@pytest.fixture(scope="module")
def with_domain(local_artifacts):
    """The production stack with a domain, its certificate and zone, alarm mail and access logs."""
    from tests.program import run_program, stack_config

    mocks = RecordingMocks()
    exports = run_program(mocks, "production", stack_config("production", {**local_artifacts, **WITH_DOMAIN}))
    return mocks, exports


def run(run_stack, **overrides):
    return run_stack("production", secret_keys=(), **overrides)


def one(mocks: RecordingMocks, typ: str, name: str):
    found = [r for r in mocks.of_type(typ) if r.name == name]
    assert len(found) == 1, f"expected one {typ} named {name}, found {[r.urn for r in mocks.of_type(typ)]}"
    return found[0]


def mock_id(name: str) -> str:
    """The id the mocks give a resource: what other resources' inputs carry when they refer to it."""
    return f"{name}-id"


def container(mocks: RecordingMocks, tier: str) -> dict:
    task = one(mocks, TASK_DEFINITION, f"{tier}-task")
    (definition,) = [c for c in json.loads(task.inputs["containerDefinitions"]) if c["name"] == tier]
    return definition


def policy(resource) -> dict:
    return json.loads(resource.inputs["policy"])


def options_of(run_stack, typ: str, **overrides) -> dict[str, pulumi.ResourceOptions]:
    """Resource options (protect, depends_on, ...) of every resource of `typ`, by name, seen by a transformation."""
    seen: dict[str, pulumi.ResourceOptions] = {}

    def record(args: pulumi.ResourceTransformationArgs):
        if args.type_ == typ:
            seen[args.name] = args.opts
        return None

    run_stack("production", secret_keys=(), transformations=[record], **overrides)
    return seen


# --- the single writer ---------------------------------------------------------------------------------

def test_app_service_runs_exactly_one_task(production):
    mocks, _ = production
    app = one(mocks, SERVICE, "app-service")
    count = app.inputs["desiredCount"]
    assert count == 1, f"{app.urn} desiredCount {count}: Prevayler has one writer"


def test_app_release_stops_the_old_writer_before_starting_the_new(production):
    """Release hand-over (docs/single-writer.md): min 100 % would wait forever for a standby to pass the load
    balancer's check; max 200 % would make ECS keep a hung writer until its replacement is healthy, which it cannot
    be while the hung JVM holds the lock. So a rolling update that stops, then starts; never blue/green, which
    shifts traffic to the new task while the old one still holds the lock."""
    mocks, _ = production
    app = one(mocks, SERVICE, "app-service")
    limits = (app.inputs["deploymentMaximumPercent"], app.inputs["deploymentMinimumHealthyPercent"])
    assert limits == (100, 0), f"{app.urn} deploys with max/min {limits}: a hung writer would outlive its " \
                               f"replacement's grace (max > 100), or every release would stall (min 100)"
    assert "deploymentController" not in app.inputs and "deploymentConfiguration" not in app.inputs, \
        f"{app.urn}: a rolling update by ECS, not blue/green"


def test_app_target_group_drains_the_old_writer_briefly_and_admits_only_a_serving_writer(production):
    """A release's write outage starts when the old writer's target drains (at most 30 s before ECS stops it); a
    target counts healthy only once Jetty answers GET / with 200 (a standby does not listen), after 2 checks 10 s
    apart, and 3 failed checks mark it unhealthy."""
    mocks, _ = production
    group = one(mocks, "aws:lb/targetGroup:TargetGroup", "app")
    assert group.inputs["deregistrationDelay"] == 30, f"{group.urn} drains {group.inputs['deregistrationDelay']} s"
    check = group.inputs["healthCheck"]
    seen = {key: check.get(key) for key in ("port", "path", "matcher", "interval", "healthyThreshold",
                                             "unhealthyThreshold")}
    assert seen == {"port": "traffic-port", "path": "/", "matcher": "200", "interval": 10, "healthyThreshold": 2,
                    "unhealthyThreshold": 3}, f"{group.urn} {seen}"


def test_app_service_is_not_autoscaled(production):
    mocks, _ = production
    scaled = [target.inputs["resourceId"] for target in mocks.of_type("aws:appautoscaling/target:Target")]
    assert not any("app-service" in resource for resource in scaled), f"autoscaling targets {scaled} include the app"


def test_app_service_is_never_rebalanced_across_zones(production):
    mocks, _ = production
    app = one(mocks, SERVICE, "app-service")
    rebalancing = app.inputs["availabilityZoneRebalancing"]
    assert rebalancing == "DISABLED", f"{app.urn} rebalancing {rebalancing}: it would start a second writer"


def test_app_health_check_grace_covers_jetty_start_and_follows_config(production, run_stack):
    mocks, _ = production
    app = one(mocks, SERVICE, "app-service")
    grace = app.inputs["healthCheckGracePeriodSeconds"]
    assert grace == 150, f"{app.urn} grace {grace}"
    assert container(mocks, "app")["healthCheck"]["startPeriod"] == 150, "the container health check must wait as long"
    mocks, _ = run(run_stack, healthCheckGraceSeconds="240")
    app = one(mocks, SERVICE, "app-service")
    assert app.inputs["healthCheckGracePeriodSeconds"] == 240, f"{app.urn} ignores healthCheckGraceSeconds"


def test_app_gets_time_to_close_its_journal_on_stop(production, run_stack):
    mocks, _ = production
    assert container(mocks, "app")["stopTimeout"] == 60, "the app container's stopTimeout"
    mocks, _ = run(run_stack, appStopTimeoutSeconds="90")
    assert container(mocks, "app")["stopTimeout"] == 90, "stopTimeout ignores appStopTimeoutSeconds"


def test_app_memory_follows_config(run_stack):
    mocks, _ = run(run_stack, appMemoryMb="1536")
    assert container(mocks, "app")["memory"] == 1536, "the app container's memory ignores appMemoryMb"


def test_app_mounts_efs_over_tls_with_iam_through_the_access_point(production):
    mocks, _ = production
    task = one(mocks, TASK_DEFINITION, "app-task")
    (volume,) = [v for v in task.inputs["volumes"] if "efsVolumeConfiguration" in v]
    efs = volume["efsVolumeConfiguration"]
    assert efs["fileSystemId"] == mock_id("data"), f"{task.urn} mounts {efs['fileSystemId']}"
    assert efs["transitEncryption"] == "ENABLED", f"{task.urn} mounts the data without TLS"
    assert efs["authorizationConfig"] == {"accessPointId": mock_id("data"), "iam": "ENABLED"}, f"{task.urn} {efs}"
    mounts = [m for m in container(mocks, "app")["mountPoints"] if m["containerPath"] != "/tmp"]
    assert mounts == [{"sourceVolume": volume["name"], "containerPath": constants.DATA_PATH, "readOnly": False}], mounts


def test_only_the_app_task_mounts_the_data(production):
    mocks, _ = production
    task = one(mocks, TASK_DEFINITION, "static-task")
    assert not task.inputs.get("volumes") and not container(mocks, "static")["mountPoints"], f"{task.urn} mounts data"


def test_app_service_waits_for_every_mount_target_and_the_file_system_policy(run_stack):
    depends_on = options_of(run_stack, SERVICE)["app-service"].depends_on
    names = {resource._name for resource in depends_on}
    expected = {"data-us-east-1a", "data-us-east-1b", "data"}
    assert expected <= names, f"app-service starts before {sorted(expected - names)} exist"


def test_app_task_role_may_only_mount_this_file_system_through_its_access_point(production):
    mocks, _ = production
    role_policy = one(mocks, "aws:iam/rolePolicy:RolePolicy", "app-task")
    (statement,) = policy(role_policy)["Statement"]
    assert sorted(statement["Action"]) == ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"], statement
    assert statement["Resource"].endswith(":data"), f"{role_policy.urn} grants {statement['Resource']}"
    assert statement["Condition"] == {"StringEquals": {"elasticfilesystem:AccessPointArn": statement["Resource"]}}


# --- the data on EFS ----------------------------------------------------------------------------------

def test_data_file_system_is_encrypted(production):
    mocks, _ = production
    data = one(mocks, "aws:efs/fileSystem:FileSystem", "data")
    assert data.inputs["encrypted"] is True, f"{data.urn} is not encrypted at rest"


def test_data_file_system_is_protected_from_destroy(run_stack):
    protected = {name: opts.protect for name, opts in options_of(run_stack, "aws:efs/fileSystem:FileSystem").items()}
    assert protected == {"data": True}, f"file systems and their protect flag: {protected}"


def test_data_file_system_is_backed_up(production):
    mocks, _ = production
    backup = one(mocks, "aws:efs/backupPolicy:BackupPolicy", "data-backup")
    assert backup.inputs == {"fileSystemId": mock_id("data"), "backupPolicy": {"status": "ENABLED"}}, backup.inputs


@pytest.mark.parametrize("az_count", ["2", "3"])
def test_one_mount_target_in_each_private_subnet(run_stack, az_count):
    mocks, _ = run(run_stack, azCount=az_count)
    private = sorted(mock_id(s.name) for s in mocks.of_type("aws:ec2/subnet:Subnet") if s.name.startswith("private-"))
    mounted = sorted(t.inputs["subnetId"] for t in mocks.of_type("aws:efs/mountTarget:MountTarget"))
    assert mounted == private and len(private) == int(az_count), f"mount targets in {mounted}, private: {private}"


def test_mount_targets_take_nfs_only_from_the_data_clients_which_only_the_app_task_carries(production):
    mocks, _ = production
    for target in mocks.of_type("aws:efs/mountTarget:MountTarget"):
        assert target.inputs["securityGroups"] == [mock_id("data-mount-targets")], f"{target.urn}"
    ingress = [r for r in mocks.of_type(SECURITY_GROUP_INGRESS)
               if r.inputs["securityGroupId"] == mock_id("data-mount-targets")]
    allowed = [(r.inputs.get("referencedSecurityGroupId"), r.inputs.get("cidrIpv4"), r.inputs["fromPort"],
                r.inputs["toPort"]) for r in ingress]
    assert allowed == [(mock_id("data-clients"), None, 2049, 2049)], f"the mount targets admit {allowed}"
    carriers = [s.name for s in mocks.of_type(SERVICE)
                if mock_id("data-clients") in s.inputs["networkConfiguration"]["securityGroups"]]
    assert carriers == ["app-service"], f"services that may mount the data: {carriers}"


def test_access_point_writes_as_the_app_user_under_its_own_root(production):
    mocks, _ = production
    point = one(mocks, "aws:efs/accessPoint:AccessPoint", "data")
    assert point.inputs["posixUser"] == {"uid": constants.APP_UID, "gid": constants.APP_GID}, f"{point.urn}"
    root = point.inputs["rootDirectory"]
    assert root["path"] != "/", f"{point.urn} exposes the whole file system"
    assert root["creationInfo"] == {"ownerUid": constants.APP_UID, "ownerGid": constants.APP_GID,
                                    "permissions": "0750"}, f"{point.urn} creates {root['creationInfo']}"


def test_file_system_policy_denies_non_tls_and_admits_only_the_app_role(production):
    mocks, _ = production
    file_system_policy = one(mocks, "aws:efs/fileSystemPolicy:FileSystemPolicy", "data")
    statements = {statement["Effect"]: statement for statement in policy(file_system_policy)["Statement"]}
    deny = statements["Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} and deny["Action"] == "*", deny
    allow = statements["Allow"]
    assert allow["Principal"] == {"AWS": "arn:aws:iam:us-east-1:123456789012:app-task"}, allow
    assert "elasticfilesystem:AccessPointArn" in allow["Condition"]["StringEquals"], f"{allow}: not via access point"
    assert "elasticfilesystem:ClientRootAccess" not in allow["Action"], f"{file_system_policy.urn} grants root"


# --- the front door -----------------------------------------------------------------------------------

def test_load_balancer_is_internet_facing_over_the_public_subnets_and_drops_invalid_headers(production):
    mocks, _ = production
    balancer = one(mocks, "aws:lb/loadBalancer:LoadBalancer", "load-balancer")
    assert balancer.inputs["internal"] is False and balancer.inputs["loadBalancerType"] == "application"
    assert balancer.inputs["subnets"] == [mock_id("public-us-east-1a"), mock_id("public-us-east-1b")], balancer.urn
    assert balancer.inputs["dropInvalidHeaderFields"] is True, f"{balancer.urn} passes invalid headers to Jetty"


def test_without_certificate_the_door_is_plain_http_to_the_app(production):
    mocks, _ = production
    (listener,) = mocks.of_type(LISTENER)
    assert (listener.inputs["port"], listener.inputs["protocol"]) == (80, "HTTP"), listener.urn
    assert listener.inputs["defaultActions"] == [{"type": "forward", "targetGroupArn": "arn:aws:lb:us-east-1:"
                                                  "123456789012:app"}], listener.inputs["defaultActions"]
    ports = sorted(r.inputs["fromPort"] for r in mocks.of_type(SECURITY_GROUP_INGRESS) if r.inputs.get("cidrIpv4"))
    assert ports == [80], f"open to the internet on {ports}; 443 only with a certificate"


def test_with_certificate_https_uses_tls13_and_http_redirects(with_domain):
    mocks, _ = with_domain
    https = one(mocks, LISTENER, "https")
    assert (https.inputs["port"], https.inputs["protocol"]) == (443, "HTTPS"), https.urn
    assert https.inputs["certificateArn"] == CERTIFICATE, f"{https.urn} certificate"
    assert https.inputs["sslPolicy"].startswith("ELBSecurityPolicy-TLS13-"), f"{https.urn} {https.inputs['sslPolicy']}"
    http = one(mocks, LISTENER, "http")
    (redirect,) = http.inputs["defaultActions"]
    assert redirect["type"] == "redirect", f"{http.urn} serves plain HTTP next to HTTPS"
    assert redirect["redirect"] == {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"}, redirect
    ports = sorted(r.inputs["fromPort"] for r in mocks.of_type(SECURITY_GROUP_INGRESS) if r.inputs.get("cidrIpv4"))
    assert ports == [80, 443], f"open to the internet on {ports}"


@pytest.mark.parametrize("door", ["production", "with_domain"])
def test_static_paths_go_to_the_static_tier_everything_else_to_the_app(door, request):
    mocks, _ = request.getfixturevalue(door)
    rule = one(mocks, "aws:lb/listenerRule:ListenerRule", "static-paths")
    front = one(mocks, LISTENER, "https" if door == "with_domain" else "http")
    assert rule.inputs["listenerArn"] == "arn:aws:lb:us-east-1:123456789012:" + front.name, f"{rule.urn} listener"
    (condition,) = rule.inputs["conditions"]
    assert sorted(condition["pathPattern"]["values"]) == ["/images/*", "/styles/*"], condition
    assert rule.inputs["actions"] == [{"type": "forward", "targetGroupArn": "arn:aws:lb:us-east-1:123456789012:static"}]
    assert front.inputs["defaultActions"][0]["targetGroupArn"].endswith(":app"), f"{front.urn} default route"


def test_access_logs_only_when_a_bucket_is_set(production, with_domain):
    balancer = one(production[0], "aws:lb/loadBalancer:LoadBalancer", "load-balancer")
    assert not balancer.inputs.get("accessLogs"), f"{balancer.urn} logs without accessLogsBucket"
    balancer = one(with_domain[0], "aws:lb/loadBalancer:LoadBalancer", "load-balancer")
    logs = balancer.inputs["accessLogs"]
    assert logs["bucket"] == WITH_DOMAIN["accessLogsBucket"] and logs["enabled"] is True, logs


def test_alias_record_only_with_a_hosted_zone(production, with_domain):
    assert not production[0].of_type("aws:route53/record:Record"), "a DNS record without hostedZoneId"
    record = one(with_domain[0], "aws:route53/record:Record", "site")
    assert (record.inputs["zoneId"], record.inputs["name"], record.inputs["type"]) == (
        "Z0123456789ABC", "news.example.com", "A"), record.inputs
    (alias,) = record.inputs["aliases"]
    assert alias["zoneId"] == "Z35SXDOTRQ7X7K" and alias["name"].endswith(".elb.amazonaws.com"), alias


# --- instances and capacity ---------------------------------------------------------------------------

def test_launch_template_requires_imdsv2_and_boots_the_ecs_ami_from_ssm(production):
    mocks, _ = production
    template = one(mocks, "aws:ec2/launchTemplate:LaunchTemplate", "container-instance")
    assert template.inputs["imageId"] == ECS_AMI, f"{template.urn} boots {template.inputs['imageId']}"
    (lookup,) = [call for call in mocks.calls if call.token == "aws:ssm/getParameter:getParameter"]
    assert lookup.args["name"] == "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id", lookup.args
    metadata = template.inputs["metadataOptions"]
    assert metadata["httpTokens"] == "required", f"{template.urn} allows IMDSv1"
    assert metadata["httpPutResponseHopLimit"] == 1, f"{template.urn} hop limit {metadata['httpPutResponseHopLimit']}"
    user_data = base64.b64decode(template.inputs["userData"]).decode()
    assert "ECS_CLUSTER=cluster" in user_data and "ECS_AWSVPC_BLOCK_IMDS=true" in user_data, user_data


def test_instances_live_in_the_private_subnets_and_scale_in_only_through_ecs(production):
    mocks, _ = production
    group = one(mocks, "aws:autoscaling/group:Group", "container-instances")
    assert group.inputs["vpcZoneIdentifiers"] == [mock_id("private-us-east-1a"), mock_id("private-us-east-1b")]
    assert group.inputs["protectFromScaleIn"] is True, f"{group.urn} lets the ASG terminate instances with tasks"
    tags = {tag["key"]: tag for tag in group.inputs["tags"]}
    assert tags["AmazonECSManaged"]["propagateAtLaunch"] is True, f"{group.urn} tags {sorted(tags)}"
    assert (group.inputs["minSize"], group.inputs["maxSize"]) == (2, 6), f"{group.urn} size"


def test_capacity_provider_manages_scaling_and_termination_and_is_the_default(production):
    mocks, _ = production
    provider = one(mocks, "aws:ecs/capacityProvider:CapacityProvider", "ec2-capacity")
    settings = provider.inputs["autoScalingGroupProvider"]
    assert settings["managedScaling"]["status"] == "ENABLED", f"{provider.urn} does not scale the instances"
    assert settings["managedTerminationProtection"] == "ENABLED", f"{provider.urn} lets busy instances go"
    attached = one(mocks, "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders", "cluster-capacity")
    (strategy,) = attached.inputs["defaultCapacityProviderStrategies"]
    assert strategy["capacityProvider"] == "ec2-capacity", f"{attached.urn} default strategy {strategy}"
    static = one(mocks, SERVICE, "static-service")
    used = [s["capacityProvider"] for s in static.inputs["capacityProviderStrategies"]]
    assert used == ["ec2-capacity"] and "launchType" not in static.inputs, f"{static.urn} runs on {used}"


def test_the_writer_runs_on_fargate_with_efs_support_and_the_static_tier_on_ec2(production):
    """A failed server under the writer is AWS's to notice and the replacement needs no slot on our instances
    (docs/single-writer.md); platform 1.4.0 is the first that mounts EFS with an access point, IAM and TLS."""
    mocks, _ = production
    app = one(mocks, SERVICE, "app-service")
    assert (app.inputs["launchType"], app.inputs["platformVersion"]) == ("FARGATE", "1.4.0"), f"{app.urn}"
    assert "capacityProviderStrategies" not in app.inputs and "orderedPlacementStrategies" not in app.inputs, app.urn
    task = one(mocks, TASK_DEFINITION, "app-task")
    assert task.inputs["requiresCompatibilities"] == ["FARGATE"], f"{task.urn}"
    assert (task.inputs["cpu"], task.inputs["memory"]) == ("1024", "2048"), f"{task.urn}: 768 MiB fits 1 vCPU/2 GiB"
    definition = container(mocks, "app")
    assert definition["linuxParameters"]["tmpfs"] == [], f"{task.urn}: Fargate refuses tmpfs"
    assert {"sourceVolume": "scratch", "containerPath": "/tmp", "readOnly": False} in definition["mountPoints"]
    assert {"name": "scratch"} in task.inputs["volumes"], f"{task.urn} has no /tmp"
    static = one(mocks, TASK_DEFINITION, "static-task")
    assert static.inputs["requiresCompatibilities"] == ["EC2"], f"{static.urn}"


def test_the_writers_tmp_is_opened_to_its_uid_before_it_starts(production):
    """Fargate's bind mount is root-owned 0755; the app (uid 10001) writes /tmp/role and the JVM's temp there.
    A capability-less first container chmods it 1777; the app container waits for it to succeed."""
    mocks, _ = production
    task = one(mocks, TASK_DEFINITION, "app-task")
    containers = {c["name"]: c for c in json.loads(task.inputs["containerDefinitions"])}
    init = containers["scratch-permissions"]
    assert (init["entryPoint"], init["command"]) == (["chmod"], ["1777", "/tmp"]), init
    assert init["essential"] is False and init["linuxParameters"]["capabilities"] == {"drop": ["ALL"]}, init
    assert init["readonlyRootFilesystem"] is True, init
    assert init["mountPoints"] == [{"sourceVolume": "scratch", "containerPath": "/tmp", "readOnly": False}], init
    assert containers["app"]["dependsOn"] == [{"containerName": "scratch-permissions", "condition": "SUCCESS"}]
    static = json.loads(one(mocks, TASK_DEFINITION, "static-task").inputs["containerDefinitions"])
    assert [c["name"] for c in static] == ["static"], "the EC2 tier has a tmpfs /tmp and needs no init container"


@pytest.mark.parametrize("memory, size", [("768", ("1024", "2048")), ("2500", ("1024", "3072")),
                                          ("9000", ("2048", "9216"))])
def test_the_writer_fargate_size_holds_app_memory(run_stack, memory, size):
    mocks, _ = run(run_stack, appMemoryMb=memory)
    task = one(mocks, TASK_DEFINITION, "app-task")
    assert (task.inputs["cpu"], task.inputs["memory"]) == size, f"appMemoryMb {memory}: {task.urn}"


def test_cluster_has_container_insights(production):
    mocks, _ = production
    cluster = one(mocks, "aws:ecs/cluster:Cluster", "cluster")
    assert {"name": "containerInsights", "value": "enabled"} in cluster.inputs["settings"], f"{cluster.urn}"


def test_repositories_scan_on_push_and_expire_old_images(run_stack):
    mocks, _ = run(run_stack, ecrKeepImages="7")
    repositories = mocks.of_type("aws:ecr/repository:Repository")
    assert sorted(r.name for r in repositories) == ["app-repository", "static-repository"], "no proxy image on AWS"
    for repository in repositories:
        assert repository.inputs["imageScanningConfiguration"] == {"scanOnPush": True}, f"{repository.urn}"
        lifecycle = one(mocks, "aws:ecr/lifecyclePolicy:LifecyclePolicy", f"{repository.name}-lifecycle")
        (rule,) = policy(lifecycle)["rules"]
        assert rule["selection"]["countType"] == "imageCountMoreThan" and rule["selection"]["countNumber"] == 7, rule
        assert rule["action"] == {"type": "expire"}, rule


def test_images_are_built_for_x86_and_pushed_to_their_repository(production):
    mocks, _ = production
    for image in mocks.of_type("docker:index/image:Image"):
        tier = image.name.removesuffix("-image")
        assert image.inputs["imageName"].startswith(f"123456789012.dkr.ecr.us-east-1.amazonaws.com/"
                                                    f"companynews-production-{tier}:"), image.inputs["imageName"]
        registry = image.inputs["registry"]
        assert SECRET_SIGNATURE in registry, f"{image.urn} carries the ECR password in plain text"
        assert registry["value"]["server"] == "https://123456789012.dkr.ecr.us-east-1.amazonaws.com", image.urn
        assert not image.inputs.get("skipPush"), f"{image.urn} is never pushed"
        assert image.inputs["build"]["platform"] == "linux/amd64", f"{image.urn} would not run on the instances"


# --- the static tier ----------------------------------------------------------------------------------

def test_static_service_runs_at_least_two_tasks_spread_over_zones(production):
    mocks, _ = production
    static = one(mocks, SERVICE, "static-service")
    assert static.inputs["desiredCount"] >= 2, f"{static.urn} desiredCount {static.inputs['desiredCount']}"
    assert static.inputs["orderedPlacementStrategies"] == [
        {"type": "spread", "field": "attribute:ecs.availability-zone"}], f"{static.urn} placement"


def test_static_service_scales_on_cpu_within_the_configured_bounds(run_stack):
    mocks, _ = run(run_stack, staticMinTasks="3", staticMaxTasks="12", staticReplicas="3")
    (target,) = mocks.of_type("aws:appautoscaling/target:Target")
    assert (target.inputs["minCapacity"], target.inputs["maxCapacity"]) == (3, 12), f"{target.urn} bounds"
    assert target.inputs["resourceId"] == "service/cluster/static-service", target.inputs["resourceId"]
    (scaling,) = mocks.of_type("aws:appautoscaling/policy:Policy")
    assert scaling.inputs["policyType"] == "TargetTrackingScaling", f"{scaling.urn}"
    metric = scaling.inputs["targetTrackingScalingPolicyConfiguration"]["predefinedMetricSpecification"]
    assert metric["predefinedMetricType"] == "ECSServiceAverageCPUUtilization", metric


def test_every_service_rolls_back_a_deployment_that_does_not_become_healthy(production):
    mocks, _ = production
    for service in mocks.of_type(SERVICE):
        assert service.inputs["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}, f"{service.urn}"
        assert service.inputs["waitForSteadyState"] is True, f"{service.urn}: `pulumi up` would not wait for health"


def test_target_groups_health_check_explicit_paths(production):
    mocks, _ = production
    expected = {"static": constants.STATIC_HEALTH_PATH, "app": constants.APP_HEALTH_PATH}
    for group in mocks.of_type("aws:lb/targetGroup:TargetGroup"):
        check = group.inputs["healthCheck"]
        assert check["path"] == expected[group.name] and check["matcher"] == "200", f"{group.urn} {check}"
        assert check["healthyThreshold"] >= 2 and check["unhealthyThreshold"] >= 2, f"{group.urn} {check}"
        assert group.inputs["targetType"] == "ip", f"{group.urn}: awsvpc tasks register by IP"


def test_every_task_runs_hardened_as_non_root(production):
    mocks, _ = production
    users = {"static": f"{constants.STATIC_UID}:{constants.STATIC_UID}",
             "app": f"{constants.APP_UID}:{constants.APP_GID}"}
    for tier, user in users.items():
        task = one(mocks, TASK_DEFINITION, f"{tier}-task")
        assert task.inputs["networkMode"] == "awsvpc", task.urn
        definition = container(mocks, tier)
        assert definition["user"] == user, f"{task.urn} runs as {definition['user']}"
        assert definition["readonlyRootFilesystem"] is True, f"{task.urn} root filesystem is writable"
        assert definition["privileged"] is False, f"{task.urn} is privileged"
        linux = definition["linuxParameters"]
        assert linux["capabilities"] == {"drop": ["ALL"]}, f"{task.urn} keeps capabilities"
        assert linux["initProcessEnabled"] is False, f"{task.urn}: the server is PID 1"
        writable = [mount["containerPath"] for mount in linux["tmpfs"]] + [
            mount["containerPath"] for mount in definition["mountPoints"] if mount["sourceVolume"] == "scratch"]
        assert writable == ["/tmp"], f"{task.urn} has nowhere to write, or more than /tmp"
        if task.inputs["requiresCompatibilities"] == ["EC2"]:     # Fargate refuses dockerSecurityOptions
            assert "no-new-privileges" in definition["dockerSecurityOptions"], f"{task.urn}"
        assert definition["healthCheck"]["command"] == ["CMD", "/usr/local/bin/healthcheck"], f"{task.urn}"


# --- network and security groups ----------------------------------------------------------------------

@pytest.mark.parametrize("az_count", ["2", "3"])
def test_vpc_spans_az_count_zones_with_a_public_and_a_private_subnet_each(run_stack, az_count):
    mocks, _ = run(run_stack, azCount=az_count, vpcCidr="10.50.0.0/20")
    vpc = one(mocks, "aws:ec2/vpc:Vpc", "vpc")
    assert vpc.inputs["enableDnsSupport"] is True and vpc.inputs["enableDnsHostnames"] is True, f"{vpc.urn} DNS"
    subnets = mocks.of_type("aws:ec2/subnet:Subnet")
    for kind in ("public", "private"):
        zones = sorted(s.inputs["availabilityZone"] for s in subnets if s.name.startswith(f"{kind}-"))
        assert len(set(zones)) == int(az_count), f"{kind} subnets in zones {zones}"
    networks = [ipaddress.IPv4Network(s.inputs["cidrBlock"]) for s in subnets]
    assert all(n.subnet_of(ipaddress.IPv4Network("10.50.0.0/20")) for n in networks), networks
    assert all(not a.overlaps(b) for i, a in enumerate(networks) for b in networks[i + 1:]), f"overlap in {networks}"
    assert all(n.prefixlen <= 27 for n in networks), f"{networks}: an ALB subnet needs at least a /27"


@pytest.mark.parametrize("nat_per_az, expected", [("false", 1), ("true", 3)])
def test_nat_gateways_one_shared_or_one_per_zone(run_stack, nat_per_az, expected):
    mocks, _ = run(run_stack, azCount="3", natPerAz=nat_per_az)
    gateways = mocks.of_type("aws:ec2/natGateway:NatGateway")
    assert len(gateways) == expected, f"natPerAz={nat_per_az}: {[g.urn for g in gateways]}"
    public = {mock_id(s.name) for s in mocks.of_type("aws:ec2/subnet:Subnet") if s.name.startswith("public-")}
    assert all(g.inputs["subnetId"] in public for g in gateways), "a NAT gateway outside the public subnets"


def test_private_subnets_go_out_through_nat_and_public_ones_through_the_internet_gateway(production):
    mocks, _ = production
    for table in mocks.of_type("aws:ec2/routeTable:RouteTable"):
        (route,) = table.inputs["routes"]
        via = "natGatewayId" if table.name.startswith("private-") else "gatewayId"
        assert route["cidrBlock"] == "0.0.0.0/0" and via in route, f"{table.urn} routes {route}"


def test_only_the_load_balancer_is_open_to_the_internet(with_domain):
    mocks, _ = with_domain
    open_rules = [r for r in mocks.of_type(SECURITY_GROUP_INGRESS)
                  if r.inputs.get("cidrIpv4") or r.inputs.get("cidrIpv6")]
    groups = {r.inputs["securityGroupId"] for r in open_rules}
    assert groups == {mock_id("load-balancer")}, f"open to an address range: {sorted(groups)}"


def test_tasks_accept_only_the_load_balancer_on_their_port(production):
    mocks, _ = production
    for tier in ("static", "app"):
        ingress = [r.inputs for r in mocks.of_type(SECURITY_GROUP_INGRESS)
                   if r.inputs["securityGroupId"] == mock_id(f"{tier}-tasks")]
        assert [(i.get("referencedSecurityGroupId"), i["fromPort"], i["toPort"]) for i in ingress] == [
            (mock_id("load-balancer"), 8080, 8080)], f"{tier} tasks admit {ingress}"


def test_load_balancer_sends_only_to_the_tasks_and_tasks_only_to_the_data_and_aws_endpoints(production):
    """The writer (Struts 2.1.8, assume it exploitable) pulls its image and ships its logs itself on Fargate, yet
    has no route to the internet: only the VPC's ECR/Logs endpoints and S3's gateway prefix list."""
    mocks, _ = production
    egress = sorted((r.inputs["securityGroupId"], r.inputs.get("referencedSecurityGroupId")
                     or r.inputs.get("prefixListId") or r.inputs["cidrIpv4"], r.inputs["fromPort"])
                    for r in mocks.of_type(SECURITY_GROUP_EGRESS))
    assert egress == sorted([
        (mock_id("load-balancer"), mock_id("static-tasks"), 8080),
        (mock_id("load-balancer"), mock_id("app-tasks"), 8080),
        (mock_id("data-clients"), mock_id("data-mount-targets"), 2049),
        (mock_id("app-tasks"), mock_id("aws-endpoints"), 443),
        (mock_id("app-tasks"), "pl-63a5400a", 443),
        (mock_id("container-instances"), "0.0.0.0/0", 443),
    ]), f"egress rules: {egress}"


def test_default_security_group_is_emptied(production):
    mocks, _ = production
    default = one(mocks, "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", "default-security-group")
    assert not default.inputs.get("ingress") and not default.inputs.get("egress"), f"{default.urn} keeps rules"


# --- observability ------------------------------------------------------------------------------------

def test_log_groups_keep_logs_for_log_retention_days(run_stack):
    mocks, _ = run(run_stack, logRetentionDays="90")
    groups = mocks.of_type("aws:cloudwatch/logGroup:LogGroup")
    assert sorted(g.name for g in groups) == ["app-logs", "static-logs"], [g.urn for g in groups]
    for group in groups:
        assert group.inputs["retentionInDays"] == 90, f"{group.urn} keeps logs {group.inputs['retentionInDays']} days"


def test_each_task_logs_to_its_own_group(production):
    mocks, _ = production
    for tier in ("static", "app"):
        logging = container(mocks, tier)["logConfiguration"]
        assert logging["logDriver"] == "awslogs", f"{tier} logs through {logging['logDriver']}"
        group = one(mocks, "aws:cloudwatch/logGroup:LogGroup", f"{tier}-logs")
        assert logging["options"]["awslogs-group"] == group.inputs["name"], f"{tier} logs to {logging['options']}"


def test_alarm_on_load_balancer_and_target_5xx(production):
    mocks, _ = production
    metrics = {one(mocks, ALARM, name).inputs["metricName"] for name in ("load-balancer-5xx", "target-5xx")}
    assert metrics == {"HTTPCode_ELB_5XX_Count", "HTTPCode_Target_5XX_Count"}, metrics
    for name in ("load-balancer-5xx", "target-5xx"):
        alarm = one(mocks, ALARM, name)
        assert alarm.inputs["dimensions"] == {"LoadBalancer": "app/load-balancer/0123456789abcdef"}, alarm.urn


def test_alarm_on_p99_response_time_over_one_second(production):
    mocks, _ = production
    alarm = one(mocks, ALARM, "slow-responses")
    assert (alarm.inputs["metricName"], alarm.inputs["extendedStatistic"]) == ("TargetResponseTime", "p99"), alarm.urn
    assert alarm.inputs["threshold"] == 1 and alarm.inputs["comparisonOperator"] == "GreaterThanThreshold", alarm.urn


def test_alarm_on_unhealthy_hosts_per_target_group(production):
    mocks, _ = production
    watched = set()
    for tier in ("static", "app"):
        alarm = one(mocks, ALARM, f"{tier}-unhealthy-hosts")
        assert alarm.inputs["metricName"] == "UnHealthyHostCount", alarm.urn
        watched.add(alarm.inputs["dimensions"]["TargetGroup"])
    assert watched == {"targetgroup/static/0123456789abcdef", "targetgroup/app/0123456789abcdef"}, watched


def test_alarm_when_no_app_task_runs(production):
    mocks, _ = production
    alarm = one(mocks, ALARM, "app-running-tasks")
    assert (alarm.inputs["namespace"], alarm.inputs["metricName"]) == ("ECS/ContainerInsights", "RunningTaskCount")
    assert alarm.inputs["dimensions"] == {"ClusterName": "cluster", "ServiceName": "app-service"}, alarm.urn
    assert alarm.inputs["threshold"] == 1 and alarm.inputs["comparisonOperator"] == "LessThanThreshold", alarm.urn
    assert alarm.inputs["treatMissingData"] == "breaching", f"{alarm.urn}: no data means no task"


def test_alarms_mail_alarm_email_only_when_set(production, with_domain):
    assert not production[0].of_type("aws:sns/topic:Topic"), "an alarm topic without alarmEmail"
    assert all(not a.inputs.get("alarmActions") for a in production[0].of_type(ALARM)), "actions without a topic"
    mocks, _ = with_domain
    subscription = one(mocks, "aws:sns/topicSubscription:TopicSubscription", "alarms-email")
    assert (subscription.inputs["protocol"], subscription.inputs["endpoint"]) == ("email", "ops@example.com")
    topic_arn = "arn:aws:sns:us-east-1:123456789012:alarms"
    for alarm in mocks.of_type(ALARM):
        assert alarm.inputs["alarmActions"] == [topic_arn] == alarm.inputs["okActions"], f"{alarm.urn} mails nobody"


def test_every_aws_resource_and_lookup_uses_the_stack_region_provider(run_stack):
    mocks, _ = run(run_stack, region="eu-west-1", **{"aws:region": "eu-west-1"})
    (provider,) = mocks.of_type("pulumi:providers:aws")
    assert provider.inputs["region"] == "eu-west-1", f"{provider.urn} region {provider.inputs['region']}"
    stray = [r.urn for r in mocks.resources
             if r.typ.startswith("aws:") and "pulumi:providers:aws::aws::" not in r.provider]
    assert not stray, f"on the default provider (disabled in Pulumi.production.yaml): {stray}"
    stray_calls = [c.token for c in mocks.calls
                   if c.token.startswith("aws:") and "pulumi:providers:aws" not in (c.provider or "")]
    assert not stray_calls, f"lookups on the default provider: {stray_calls}"


def test_outputs_contract_without_a_domain(production):
    _, exports = production
    alb = "load-balancer-1234567890.us-east-1.elb.amazonaws.com"
    assert exports == {
        "url": f"http://{alb}/",
        "hostname": alb,
        "alb_dns_name": alb,
        "alb_zone_id": "Z35SXDOTRQ7X7K",
        "dns_record": {"type": "ALIAS", "name": None, "target": alb, "zone_id": "Z35SXDOTRQ7X7K"},
        "dashboard_url": "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1"
                         "#dashboards:name=companynews-production",
    }


def test_outputs_contract_with_a_domain(with_domain):
    _, exports = with_domain
    alb = "load-balancer-1234567890.us-east-1.elb.amazonaws.com"
    assert exports["url"] == "https://news.example.com/" and exports["hostname"] == "news.example.com", exports
    assert exports["dns_record"] == {"type": "ALIAS", "name": "news.example.com", "target": alb,
                                     "zone_id": "Z35SXDOTRQ7X7K"}, exports["dns_record"]


@pytest.mark.parametrize("key, value, words", [
    ("azCount", "1", "an integer from 2 to 6"),
    ("certificateArn", "arn:aws:iam::123456789012:server-certificate/site", "ACM certificate ARN"),
    ("vpcCidr", "10.40.0.0/24", "IPv4 network from /16 to /22"),
    ("instanceType", "m7g.large", "x86_64"),
    ("logRetentionDays", "31", "one of 1, 3, 5"),
    ("alarmEmail", "ops-at-example.com", "email address"),
    ("minInstances", "8", "at most maxInstances"),
    ("staticReplicas", "11", "from staticMinTasks (2) to staticMaxTasks (10)"),
    ("hostedZoneId", "Z0123456789ABC", "unless domainName is set"),
    ("region", "eu-west-1", "must equal aws:region"),
])
def test_bad_aws_settings_are_refused_before_any_resource(local_artifacts, key, value, words):
    from tests.program import run_program, stack_config

    mocks = RecordingMocks()
    with pytest.raises(SettingsError) as refused:
        run_program(mocks, "production", stack_config("production", {**local_artifacts, key: value}))
    message = str(refused.value)
    assert f"companynews:{key}" in message and value in message and words in message, message
    assert mocks.resources == [], f"declared before refusing: {[r.urn for r in mocks.resources]}"


def test_more_zones_than_the_region_has_is_refused_naming_az_count(local_artifacts):
    from tests.program import run_program, stack_config

    mocks = RecordingMocks(zones=("us-east-1a", "us-east-1b"))
    with pytest.raises(Exception, match=r"companynews:azCount = 3: region us-east-1 has only 2 zones"):
        run_program(mocks, "production", stack_config("production", {**local_artifacts, "azCount": "3"}))
    assert not [r for r in mocks.resources if r.typ.startswith("aws:")], "AWS resources declared before refusing"


# --- fresh-account readiness (issue 12) ---------------------------------------------------------------

def test_load_balancer_idle_timeout_is_60_seconds_stated_explicitly(production):
    """Jetty's idle timeout (docker/app) must stay above this, or the load balancer reuses closed connections."""
    mocks, _ = production
    balancer = one(mocks, "aws:lb/loadBalancer:LoadBalancer", "load-balancer")
    assert balancer.inputs.get("idleTimeout") == 60, f"{balancer.urn} idle timeout {balancer.inputs.get('idleTimeout')}"


def test_load_balancer_deletion_protection_is_on_unless_turned_off(production, run_stack):
    mocks, _ = production
    balancer = one(mocks, "aws:lb/loadBalancer:LoadBalancer", "load-balancer")
    assert balancer.inputs["enableDeletionProtection"] is True, f"{balancer.urn} can be deleted by a stray destroy"
    mocks, _ = run(run_stack, albDeletionProtection="false")
    balancer = one(mocks, "aws:lb/loadBalancer:LoadBalancer", "load-balancer")
    assert balancer.inputs["enableDeletionProtection"] is False, "albDeletionProtection false is ignored"


@pytest.mark.parametrize("overrides, words", [
    ({"allowPlainHttp": "false"}, "or allowPlainHttp must be true"),
    ({"allowPlainHttp": "true", "domainName": "news.example.com", "certificateArn": CERTIFICATE},
     "must be false when certificateArn is set"),
])
def test_plain_http_must_be_allowed_explicitly_and_never_beside_a_certificate(local_artifacts, overrides, words):
    from tests.program import run_program, stack_config

    mocks = RecordingMocks()
    with pytest.raises(SettingsError, match=words):
        run_program(mocks, "production", stack_config("production", {**local_artifacts, **overrides}))
    assert mocks.resources == [], "declared before refusing"


def test_zones_are_only_those_offering_the_instance_type(local_artifacts):
    """t3 is not offered in us-east-1e: a subnet there would make the auto scaling group's launches fail."""
    from tests.program import run_program, stack_config

    mocks = RecordingMocks(offered_in=("us-east-1b", "us-east-1c", "us-east-1d", "us-east-1f"))
    run_program(mocks, "production", stack_config("production", {**local_artifacts, "azCount": "3"}))
    zones = sorted({s.inputs["availabilityZone"] for s in mocks.of_type("aws:ec2/subnet:Subnet")})
    assert zones == ["us-east-1b", "us-east-1c", "us-east-1d"], f"subnets in {zones}"
    (call,) = [c for c in mocks.calls if c.token == "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings"]
    assert call.args["filters"] == [{"name": "instance-type", "values": ["t3.medium"]}], call.args


def test_too_few_zones_offering_the_instance_type_is_refused_naming_it(local_artifacts):
    from tests.program import run_program, stack_config

    mocks = RecordingMocks(offered_in=("us-east-1a",))
    with pytest.raises(Exception, match=r"companynews:azCount = 2: .* only 1 zones available that offer t3.medium"):
        run_program(mocks, "production", stack_config("production", local_artifacts))


def test_awslogs_writes_with_the_execution_role_and_the_instance_role_has_no_ecr_or_logs(production):
    mocks, _ = production
    template = one(mocks, "aws:ec2/launchTemplate:LaunchTemplate", "container-instance")
    user_data = base64.b64decode(template.inputs["userData"]).decode()
    assert "ECS_ENABLE_AWSLOGS_EXECUTIONROLE_OVERRIDE=true" in user_data, user_data
    attached = [a.inputs["policyArn"] for a in mocks.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")]
    assert attached == ["arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"], f"instance role also has {attached}"
    statements = policy(one(mocks, "aws:iam/rolePolicy:RolePolicy", "container-instance-ecs-agent"))["Statement"]
    actions = [a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])]
    assert not [a for a in actions if a.startswith(("ecr:", "logs:"))], f"the instance role may {actions}"
    unscoped = [s["Action"] for s in statements if s["Resource"] == "*" and "Condition" not in s]
    assert unscoped == [["ecs:DiscoverPollEndpoint", "ec2:DescribeTags"]], f"on any resource: {unscoped}"


def test_launch_template_changes_roll_the_instances_launching_before_terminating(production):
    mocks, _ = production
    group = one(mocks, "aws:autoscaling/group:Group", "container-instances")
    refresh = group.inputs["instanceRefresh"]
    assert refresh["strategy"] == "Rolling", f"{group.urn} {refresh}"
    preferences = refresh["preferences"]
    assert preferences["minHealthyPercentage"] == 100 and preferences["maxHealthyPercentage"] == 200, preferences
    assert preferences["scaleInProtectedInstances"] == "Refresh", f"{group.urn}: ECS protects every busy instance"


def test_s3_is_reached_through_a_gateway_endpoint_on_every_private_route_table(production):
    mocks, _ = production
    endpoint = one(mocks, "aws:ec2/vpcEndpoint:VpcEndpoint", "s3")
    assert (endpoint.inputs["serviceName"], endpoint.inputs["vpcEndpointType"]) == (
        "com.amazonaws.us-east-1.s3", "Gateway"), endpoint.urn
    private_tables = sorted(mock_id(t.name) for t in mocks.of_type("aws:ec2/routeTable:RouteTable")
                            if t.name.startswith("private-"))
    assert sorted(endpoint.inputs["routeTableIds"]) == private_tables, f"{endpoint.urn} routes {private_tables}"
    interface = sorted(e.inputs["serviceName"] for e in mocks.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
                       if e.inputs["vpcEndpointType"] == "Interface")
    assert interface == ["com.amazonaws.us-east-1.ecr.api", "com.amazonaws.us-east-1.ecr.dkr",
                         "com.amazonaws.us-east-1.logs"], interface


@pytest.mark.parametrize("tier", ["static", "app"])
def test_alarm_when_no_target_is_healthy_at_all(production, tier):
    """UnHealthyHostCount stays 0 when nothing is registered; HealthyHostCount below 1 catches it."""
    mocks, _ = production
    alarm = one(mocks, ALARM, f"{tier}-no-healthy-host")
    assert (alarm.inputs["metricName"], alarm.inputs["threshold"], alarm.inputs["comparisonOperator"]) == (
        "HealthyHostCount", 1, "LessThanThreshold"), alarm.urn
    assert alarm.inputs["dimensions"]["TargetGroup"] == f"targetgroup/{tier}/0123456789abcdef", alarm.urn
    assert alarm.inputs["treatMissingData"] == "breaching", f"{alarm.urn}: no data means no healthy host"


def test_alarm_when_fewer_instances_than_the_minimum_are_in_service(run_stack):
    mocks, _ = run(run_stack, minInstances="3")
    group = one(mocks, "aws:autoscaling/group:Group", "container-instances")
    assert "GroupInServiceInstances" in group.inputs["enabledMetrics"], f"{group.urn} publishes no InService metric"
    alarm = one(mocks, ALARM, "instances-below-minimum")
    assert (alarm.inputs["namespace"], alarm.inputs["metricName"]) == ("AWS/AutoScaling", "GroupInServiceInstances")
    assert (alarm.inputs["threshold"], alarm.inputs["comparisonOperator"]) == (3, "LessThanThreshold"), alarm.urn


def test_alarm_when_an_ecs_agent_disconnects(production):
    mocks, _ = production
    rule = one(mocks, "aws:cloudwatch/eventRule:EventRule", "agent-disconnected")
    pattern = json.loads(rule.inputs["eventPattern"])
    assert pattern["detail-type"] == ["ECS Container Instance State Change"], pattern
    assert pattern["detail"]["agentConnected"] == [False], pattern
    assert pattern["detail"]["clusterArn"] == ["arn:aws:ecs:us-east-1:123456789012:cluster"], pattern
    alarm = one(mocks, ALARM, "agent-disconnected")
    assert (alarm.inputs["namespace"], alarm.inputs["metricName"]) == ("AWS/Events", "MatchedEvents"), alarm.urn
    assert alarm.inputs["dimensions"] == {"RuleName": "agent-disconnected"}, alarm.urn


@pytest.mark.parametrize("cdn", ["false", "true"])
def test_dashboard_shows_what_an_operator_needs_and_its_url_is_an_output(run_stack, cdn):
    mocks, exports = run(run_stack, cdn=cdn)
    dashboard = one(mocks, "aws:cloudwatch/dashboard:Dashboard", "operations")
    body = json.loads(dashboard.inputs["dashboardBody"])
    metrics = {metric[1] for widget in body["widgets"] for metric in widget["properties"]["metrics"]}
    expected = {"RequestCount", "HTTPCode_ELB_5XX_Count", "HTTPCode_Target_5XX_Count", "TargetResponseTime",
                "HealthyHostCount", "RunningTaskCount", "DataReadIOBytes", "DataWriteIOBytes"}
    assert expected <= metrics, f"{dashboard.urn} lacks {sorted(expected - metrics)}"
    assert ("Requests" in metrics) == (cdn == "true"), f"CloudFront on the dashboard with cdn {cdn}: {metrics}"
    p99 = [w for w in body["widgets"] if w["properties"]["title"].startswith("Response time")]
    assert p99 and p99[0]["properties"]["stat"] == "p99", p99
    assert exports["dashboard_url"].endswith("#dashboards:name=companynews-production"), exports["dashboard_url"]


def test_the_aws_endpoints_admit_the_writer_and_the_instances_on_https_only(production):
    """Private DNS sends every ECR and Logs call in the VPC to the endpoints: the ECS agent's pulls for the static
    tier as much as the Fargate writer's own."""
    mocks, _ = production
    admitted = sorted((r.inputs.get("referencedSecurityGroupId") or r.inputs.get("cidrIpv4"), r.inputs["fromPort"])
                      for r in mocks.of_type(SECURITY_GROUP_INGRESS)
                      if r.inputs["securityGroupId"] == mock_id("aws-endpoints"))
    assert admitted == sorted([(mock_id("app-tasks"), 443), (mock_id("container-instances"), 443)]), admitted
    for endpoint in mocks.of_type("aws:ec2/vpcEndpoint:VpcEndpoint"):
        if endpoint.inputs["vpcEndpointType"] == "Interface":
            assert endpoint.inputs["privateDnsEnabled"] is True, f"{endpoint.urn}: clients would still use the NAT"
            assert endpoint.inputs["securityGroupIds"] == [mock_id("aws-endpoints")], endpoint.urn


def test_the_cost_model_counts_the_alarms_the_stack_declares(production):
    """docs/production.md's CloudWatch line (from scripts/capacity) prices ALARMS alarms: keep it true."""
    from tests.unit.test_capacity import capacity

    mocks, _ = production
    declared = sorted(alarm.name for alarm in mocks.of_type(ALARM))
    assert len(declared) == capacity.ALARMS, f"scripts/capacity prices {capacity.ALARMS} alarms; declared {declared}"
