"""Pulumi mocks for the unit tests: record every resource as declared and answer with plausible outputs."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi


@dataclass
class Declared:
    typ: str
    name: str
    inputs: dict[str, Any]
    urn: str


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self):
        self.resources: list[Declared] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        outputs = dict(args.inputs)
        if args.typ == "docker:index/image:Image":
            outputs["repoDigest"] = f"sha256:{abs(hash(args.name)):064d}"[:71]
        if args.typ == "command:local:Command":
            outputs["stdout"] = "answered 200"
        urn = f"urn:pulumi:test::companynews::{args.typ}::{args.name}"
        self.resources.append(Declared(args.typ, args.name, dict(args.inputs), urn))
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}

    def of_type(self, typ: str) -> list[Declared]:
        return [resource for resource in self.resources if resource.typ == typ]
