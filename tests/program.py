"""Run the Pulumi program (__main__.py) under Pulumi's mock runtime, with a stack's config read the way the
engine reads it, and return the stack outputs. Unit tests and the replay both go through here."""
from __future__ import annotations

import json
import runpy
from pathlib import Path
from typing import Any, Iterable, Mapping

import pulumi
import yaml
from pulumi.runtime import settings as runtime_settings

REPO_ROOT = Path(__file__).resolve().parent.parent
PROGRAM = REPO_ROOT / "__main__.py"
PROJECT = "companynews"


def _as_config_string(value: Any) -> str:
    """The engine hands every config value to the program as a string; objects and arrays as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def stack_config(stack: str, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Pulumi.yaml defaults, then Pulumi.<stack>.yaml, then overrides — keys as `companynews:<key>`.

    A `secure:` value (encrypted by the CLI) cannot be decrypted here and is left out: pass it as an override.
    """
    project = yaml.safe_load((REPO_ROOT / "Pulumi.yaml").read_text())
    config: dict[str, str] = {}
    for key, schema in (project.get("config") or {}).items():
        if isinstance(schema, dict) and "default" in schema:
            config[f"{PROJECT}:{key}"] = _as_config_string(schema["default"])
    stack_file = REPO_ROOT / f"Pulumi.{stack}.yaml"
    if stack_file.exists():
        for key, value in ((yaml.safe_load(stack_file.read_text()) or {}).get("config") or {}).items():
            if isinstance(value, dict) and "secure" in value:
                continue
            config[key if ":" in key else f"{PROJECT}:{key}"] = _as_config_string(value)
    for key, value in (overrides or {}).items():
        config[key if ":" in key else f"{PROJECT}:{key}"] = _as_config_string(value)
    return config


def run_program(mocks: pulumi.runtime.Mocks, stack: str, config: Mapping[str, str],
                secret_keys: Iterable[str] = (), preview: bool = False,
                transformations: Iterable[pulumi.ResourceTransformation] = ()) -> dict[str, Any]:
    """Run __main__.py once against `mocks`; return its exports with every Output resolved.

    `transformations` are registered on the new root stack: tests use them to see resource options.
    """
    runtime_settings.ROOT.set(None)
    pulumi.runtime.set_all_config(dict(config), secret_keys=[
        key if ":" in key else f"{PROJECT}:{key}" for key in secret_keys])
    # Mocks that model the engine (tests/replay/engine.py) bring a monitor that also sees resource options.
    monitor = mocks.monitor() if hasattr(mocks, "monitor") else None
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=preview, monitor=monitor)
    exports: dict[str, Any] = {}

    @pulumi.runtime.test
    def program():
        for transformation in transformations:
            pulumi.runtime.register_stack_transformation(transformation)
        runpy.run_path(str(PROGRAM), run_name="__pulumi_program__")
        root = pulumi.runtime.get_root_resource()
        return pulumi.Output.from_input(dict(root.outputs)).apply(exports.update)

    program()
    return exports
