"""OperationsDashboard: one CloudWatch dashboard for the production stack, what an operator looks at first."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import pulumi
import pulumi_aws as aws

from components.aws_cloud import AwsCloud

PERIOD_SECONDS = 60
# CloudFront publishes its metrics in us-east-1 only, whatever the stack's region, with Region=Global.
# https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/programming-cloudwatch-metrics.html
CLOUDFRONT_METRICS_REGION = "us-east-1"


@dataclass(frozen=True)
class OperationsDashboardArgs:
    cloud: AwsCloud
    load_balancer_arn_suffix: pulumi.Input[str]
    target_groups: Mapping[str, pulumi.Input[str]]     # tier -> target group arn_suffix
    services: Mapping[str, pulumi.Input[str]]          # tier -> ECS service name
    file_system_id: pulumi.Input[str]
    distribution_id: pulumi.Input[str] | None = None   # with cdn


def dashboard_url(region: str, name: str) -> str:
    return f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#dashboards:name={name}"


class OperationsDashboard(pulumi.ComponentResource):
    """Requests, 5xx, p99 latency, healthy hosts, running tasks, EFS I/O and (with cdn) CloudFront; `url`
    opens it in the console."""

    url: pulumi.Output[str]

    def __init__(self, name: str, args: OperationsDashboardArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("companynews:index:OperationsDashboard", name, None, opts)
        cloud = args.cloud
        dashboard_name = f"companynews-{cloud.args.stack}"
        inputs: dict[str, Any] = {
            "lb": args.load_balancer_arn_suffix, "cluster": cloud.cluster.name,
            "file_system": args.file_system_id, "distribution": args.distribution_id,
            **{f"tg_{tier}": suffix for tier, suffix in args.target_groups.items()},
            **{f"svc_{tier}": service for tier, service in args.services.items()},
        }
        body = pulumi.Output.all(**inputs).apply(
            lambda values: pulumi.Output.json_dumps(self._body(cloud.args.region, values, sorted(args.services))))
        self.dashboard = aws.cloudwatch.Dashboard(
            name, dashboard_name=dashboard_name, dashboard_body=body, opts=cloud.options(self))
        self.url = self.dashboard.dashboard_name.apply(lambda created: dashboard_url(cloud.args.region, created))
        self.register_outputs({"url": self.url})

    @staticmethod
    def _body(region: str, values: Mapping[str, Any], tiers: list[str]) -> dict:
        def widget(title: str, metrics: list[list], *, stat: str = "Sum", widget_region: str = region) -> dict:
            return {"type": "metric", "width": 12, "height": 6, "properties": {
                "title": title, "region": widget_region, "stat": stat, "period": PERIOD_SECONDS, "view": "timeSeries",
                "metrics": metrics}}

        lb = values["lb"]
        widgets = [
            widget("Requests", [["AWS/ApplicationELB", "RequestCount", "LoadBalancer", lb]]),
            widget("5xx", [["AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", "LoadBalancer", lb],
                           ["AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", "LoadBalancer", lb]]),
            widget("Response time p99 (s)", [["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", lb]],
                   stat="p99"),
            widget("Healthy hosts", [["AWS/ApplicationELB", "HealthyHostCount", "TargetGroup", values[f"tg_{tier}"],
                                      "LoadBalancer", lb] for tier in tiers], stat="Minimum"),
            widget("Running tasks", [["ECS/ContainerInsights", "RunningTaskCount", "ClusterName", values["cluster"],
                                      "ServiceName", values[f"svc_{tier}"]] for tier in tiers], stat="Minimum"),
            widget("EFS I/O (bytes)", [["AWS/EFS", metric, "FileSystemId", values["file_system"]]
                                       for metric in ("DataReadIOBytes", "DataWriteIOBytes", "MetadataIOBytes")]),
        ]
        if values.get("distribution"):
            widgets.append(widget(
                "CloudFront requests and 5xx rate (%)",
                [["AWS/CloudFront", "Requests", "Region", "Global", "DistributionId", values["distribution"]],
                 ["AWS/CloudFront", "5xxErrorRate", "Region", "Global", "DistributionId", values["distribution"],
                  {"stat": "Average", "yAxis": "right"}]],
                widget_region=CLOUDFRONT_METRICS_REGION))
        return {"widgets": widgets}
