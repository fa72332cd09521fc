"""Pulumi mocks for the unit tests: record every resource as declared and answer with plausible outputs."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi


# What the AWS mocks answer with: one account, one region, six zones unless a test says fewer.
ACCOUNT = "123456789012"
REGION = "us-east-1"
ZONES = tuple(f"{REGION}{letter}" for letter in "abcdef")
ECS_AMI = "ami-0123456789abcdef0"
CDN_DOMAIN_NAME = "d111111abcdef8.cloudfront.net"
CLOUDFRONT_ZONE_ID = "Z2FDTNDATAQYW2"     # the one zone every CloudFront alias points into


@dataclass
class Declared:
    typ: str
    name: str
    inputs: dict[str, Any]
    urn: str
    provider: str = ""      # the provider reference it was registered with ("" for the default provider)


def _aws_outputs(args: pulumi.runtime.MockResourceArgs) -> dict[str, Any]:
    """What AWS would add to a resource's inputs: an ARN, an autoname, and the attributes the program reads."""
    service = args.typ.split(":")[1].split("/")[0]
    outputs: dict[str, Any] = {"arn": f"arn:aws:{service}:{REGION}:{ACCOUNT}:{args.name}", "name": args.name,
                               "tagsAll": args.inputs.get("tags", {})}
    if args.typ == "aws:lb/loadBalancer:LoadBalancer":
        outputs.update(dnsName=f"{args.name}-1234567890.{REGION}.elb.amazonaws.com", zoneId="Z35SXDOTRQ7X7K",
                       arnSuffix=f"app/{args.name}/0123456789abcdef")
    elif args.typ == "aws:cloudfront/distribution:Distribution":
        outputs.update(domainName=CDN_DOMAIN_NAME, hostedZoneId=CLOUDFRONT_ZONE_ID)
    elif args.typ == "aws:lb/targetGroup:TargetGroup":
        outputs.update(arnSuffix=f"targetgroup/{args.name}/0123456789abcdef")
    elif args.typ == "aws:ecr/repository:Repository":
        repository = args.inputs.get("name", args.name)
        outputs.update(registryId=ACCOUNT, repositoryUrl=f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{repository}")
    elif args.typ == "aws:ec2/launchTemplate:LaunchTemplate":
        outputs.update(latestVersion=1)
    elif args.typ == "aws:ec2/vpcEndpoint:VpcEndpoint":
        outputs.update(prefixListId="pl-63a5400a")
    elif args.typ == "aws:cloudwatch/dashboard:Dashboard":
        outputs.update(dashboardArn=f"arn:aws:cloudwatch::{ACCOUNT}:dashboard/{args.inputs['dashboardName']}")
    return {**outputs, **args.inputs}


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self, zones: tuple[str, ...] = ZONES, offered_in: tuple[str, ...] | None = None):
        self.resources: list[Declared] = []
        self.calls: list[pulumi.runtime.MockCallArgs] = []
        self.zones = zones
        self.offered_in = zones if offered_in is None else offered_in   # zones offering the instance type

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        outputs = dict(args.inputs)
        if args.typ == "docker:index/image:Image":
            outputs["repoDigest"] = f"sha256:{abs(hash(args.name)):064d}"[:71]
        if args.typ == "command:local:Command":
            outputs["stdout"] = "answered 200"
        if args.typ.startswith("aws:"):
            outputs = _aws_outputs(args)
        urn = f"urn:pulumi:test::companynews::{args.typ}::{args.name}"
        self.resources.append(Declared(args.typ, args.name, dict(args.inputs), urn, args.provider or ""))
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs):
        self.calls.append(args)
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            zone_ids = [f"use1-az{number}" for number in range(1, len(self.zones) + 1)]
            return {"id": REGION, "names": list(self.zones), "zoneIds": zone_ids,
                    "groupNames": [REGION] * len(self.zones), "state": "available"}
        if args.token == "aws:ec2/getInstanceTypeOfferings:getInstanceTypeOfferings":
            # DescribeInstanceTypeOfferings answers one row per zone that offers the filtered type.
            (wanted,) = [f["values"] for f in args.args["filters"] if f["name"] == "instance-type"]
            return {"id": REGION, "locations": list(self.offered_in), "locationTypes": ["availability-zone"] *
                    len(self.offered_in), "instanceTypes": [wanted[0]] * len(self.offered_in)}
        if args.token == "aws:ssm/getParameter:getParameter":
            name = args.args["name"]
            return {"id": name, "name": name, "type": "String", "value": ECS_AMI, "insecureValue": ECS_AMI,
                    "version": 1, "arn": f"arn:aws:ssm:{REGION}::parameter{name}"}
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"id": ACCOUNT, "accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/deployer",
                    "userId": "AIDAEXAMPLEUSERID"}
        if args.token == "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            return {"id": REGION, "authorizationToken": "QVdTOm1vY2stcGFzc3dvcmQ=", "expiresAt": "2030-01-01T00:00:00Z",
                    "password": "mock-password", "userName": "AWS",
                    "proxyEndpoint": f"https://{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com"}
        return {}

    def of_type(self, typ: str) -> list[Declared]:
        return [resource for resource in self.resources if resource.typ == typ]
