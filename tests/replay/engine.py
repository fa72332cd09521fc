"""ReplayMocks: a Pulumi mock runtime that applies each Docker resource to the real engine as declared.

The Pulumi engine and its providers cannot run here, so this stands in for pulumi-docker and
pulumi-command: Image → build with its args; Network and Volume → create (or reuse); Container → create
and start with every input the program sets; Command → run its `create` command. An input it does not
implement is refused, never ignored, so the replay cannot silently drift from what the program declares.
"""
from __future__ import annotations

import subprocess
import threading
from typing import Any, Callable

import docker
import docker.errors
import docker.types
import pulumi

from components import constants

SECRET_SIGNATURE = "4dabf18193072939515e22adb298388d"
COMMAND_TIMEOUT_SECONDS = 600


class ReplayError(RuntimeError):
    pass


def reveal(value: Any) -> Any:
    """Secrets arrive wrapped in the mock runtime; the engine would hand the provider plain values."""
    if isinstance(value, dict):
        if SECRET_SIGNATURE in value:
            return reveal(value.get("value"))
        return {key: reveal(item) for key, item in value.items()}
    if isinstance(value, list):
        return [reveal(item) for item in value]
    return value


def whole(number: Any) -> int:
    """Numbers cross the mock monitor as protobuf doubles; Docker wants integers."""
    if float(number) != int(float(number)):
        raise ReplayError(f"{number!r} is not a whole number")
    return int(float(number))


def duration_ns(text: str) -> int:
    """A Docker duration such as '5s', '250ms' or '2m' in nanoseconds."""
    units = {"ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
    for suffix in ("ms", "s", "m", "h"):
        if text.endswith(suffix) and text[: -len(suffix)].replace(".", "", 1).isdigit():
            return int(float(text[: -len(suffix)]) * units[suffix])
    raise ReplayError(f"duration {text!r} is not of the form <number>(ms|s|m|h)")


def refuse_unknown(typ: str, inputs: dict[str, Any], implemented: set[str]) -> None:
    unknown = sorted(key for key, value in inputs.items() if key not in implemented and value not in (None, [], {}))
    if unknown:
        raise ReplayError(f"{typ}: the replay does not implement input(s) {unknown}; implement them in "
                          f"tests/replay/engine.py rather than letting them be ignored")


class ReplayMocks(pulumi.runtime.Mocks):
    def __init__(self, log: Callable[[str], None] = print):
        self._local = threading.local()
        self.log = log
        self.appliers = {
            "docker:index/network:Network": self._network,
            "docker:index/volume:Volume": self._volume,
            "docker:index/image:Image": self._image,
            "docker:index/container:Container": self._container,
            "command:local:Command": self._command,
        }

    @property
    def client(self) -> docker.DockerClient:
        # The mock monitor registers resources from several threads; one client per thread.
        if not hasattr(self._local, "client"):
            self._local.client = docker.from_env(timeout=600)
        return self._local.client

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        if not args.custom:
            return args.name, dict(args.inputs)
        applier = self.appliers.get(args.typ)
        if applier is None:
            raise ReplayError(f"{args.typ} ({args.name}): the replay only applies Docker and local Command "
                              f"resources")
        inputs = reveal(dict(args.inputs))
        resource_id, outputs = applier(inputs)
        return resource_id, {**args.inputs, **outputs}

    def call(self, args: pulumi.runtime.MockCallArgs):
        raise ReplayError(f"invoke {args.token} is not implemented by the replay")

    # --- resources --------------------------------------------------------------------------------------

    def _network(self, inputs: dict[str, Any]):
        refuse_unknown("Network", inputs, {"name", "driver", "ipamConfigs", "labels"})
        name = inputs["name"]
        subnets = [config["subnet"] for config in inputs.get("ipamConfigs", [])]
        for existing in self.client.networks.list(names=[name]):
            existing_subnets = [c["Subnet"] for c in (existing.attrs.get("IPAM") or {}).get("Config") or []]
            if existing.name == name and existing_subnets == subnets:
                self.log(f"network {name}: reused")
                return existing.id, {"name": name}
            existing.remove()
        network = self.client.networks.create(
            name,
            driver=inputs.get("driver", "bridge"),
            ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=s) for s in subnets]),
            labels={item["label"]: item["value"] for item in inputs.get("labels", [])},
        )
        self.log(f"network {name}: created")
        return network.id, {"name": name}

    def _volume(self, inputs: dict[str, Any]):
        refuse_unknown("Volume", inputs, {"name", "labels"})
        name = inputs["name"]
        try:
            volume = self.client.volumes.get(name)
            self.log(f"volume {name}: reused")
        except docker.errors.NotFound:
            volume = self.client.volumes.create(
                name, labels={item["label"]: item["value"] for item in inputs.get("labels", [])})
            self.log(f"volume {name}: created")
        return volume.name, {"name": volume.name}

    def _image(self, inputs: dict[str, Any]):
        refuse_unknown("Image", inputs, {"imageName", "skipPush", "build", "buildOnPreview"})
        if inputs.get("skipPush") is not True:
            raise ReplayError(f"Image {inputs['imageName']}: only skipPush=True images can be replayed (no registry)")
        build = inputs["build"]
        refuse_unknown("Image.build", build, {"context", "args", "dockerfile"})
        self.log(f"image {inputs['imageName']}: building {build['context']}")
        try:
            image, _ = self.client.images.build(
                path=build["context"], dockerfile=build.get("dockerfile", "Dockerfile"), tag=inputs["imageName"],
                buildargs=build.get("args") or {}, rm=True, forcerm=True)
        except docker.errors.BuildError as error:
            tail = "".join(str(line.get("stream", line.get("error", ""))) for line in list(error.build_log)[-20:])
            raise ReplayError(f"Image {inputs['imageName']}: build failed: {error}\n{tail}") from error
        return image.id, {"repoDigest": image.id, "imageName": inputs["imageName"]}

    def _container(self, inputs: dict[str, Any]):
        refuse_unknown("Container", inputs, {
            "name", "image", "user", "envs", "ports", "mounts", "networksAdvanced", "restart", "healthcheck",
            "labels", "readOnly", "tmpfs", "capabilities", "securityOpts", "memory", "memorySwap", "ulimits",
            "logDriver", "logOpts", "networkMode"})
        name = inputs["name"]
        try:
            self.client.containers.get(name).remove(force=True)
            self.log(f"container {name}: replaced")
        except docker.errors.NotFound:
            pass
        network_options = self._network_options(name, inputs)
        health = inputs.get("healthcheck")
        capabilities = inputs.get("capabilities") or {}
        refuse_unknown("Container.capabilities", capabilities, {"drops", "adds"})
        container = self.client.containers.create(
            inputs["image"],
            name=name,
            user=inputs.get("user"),
            environment=list(inputs.get("envs") or []),
            ports={f"{whole(p['internal'])}/{p.get('protocol', 'tcp')}": (p.get("ip", "0.0.0.0"), whole(p["external"]))
                   for p in inputs.get("ports") or []},
            mounts=[docker.types.Mount(target=m["target"], source=m["source"], type=m["type"],
                                       read_only=bool(m.get("readOnly"))) for m in inputs.get("mounts") or []],
            **network_options,
            restart_policy={"Name": inputs["restart"]} if inputs.get("restart") else None,
            healthcheck=None if not health else {
                "test": health["tests"],
                "interval": duration_ns(health.get("interval", "30s")),
                "timeout": duration_ns(health.get("timeout", "30s")),
                "retries": whole(health.get("retries", 3)),
                "start_period": duration_ns(health.get("startPeriod", "0s")),
            },
            labels={item["label"]: item["value"] for item in inputs.get("labels") or []},
            read_only=bool(inputs.get("readOnly")),
            tmpfs=inputs.get("tmpfs"),
            cap_drop=capabilities.get("drops"),
            cap_add=capabilities.get("adds"),
            security_opt=inputs.get("securityOpts"),
            mem_limit=f"{whole(inputs['memory'])}m" if inputs.get("memory") else None,
            memswap_limit=f"{whole(inputs['memorySwap'])}m" if inputs.get("memorySwap") else None,
            ulimits=[docker.types.Ulimit(name=u["name"], soft=whole(u["soft"]), hard=whole(u["hard"]))
                     for u in inputs.get("ulimits") or []],
            log_config=docker.types.LogConfig(type=inputs["logDriver"], config=inputs.get("logOpts") or {})
            if inputs.get("logDriver") else None,
        )
        container.start()
        self.log(f"container {name}: started")
        return container.id, {"name": name}

    def _network_options(self, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        """networkMode bridge (pulumi-docker's default): one user-defined network; host: the host's own."""
        mode = inputs.get("networkMode") or "bridge"
        if mode == "host":
            if inputs.get("networksAdvanced") or inputs.get("ports"):
                raise ReplayError(f"Container {name}: networkMode host with networksAdvanced or ports, which "
                                  f"Docker ignores on the host's network; declare neither")
            return {"network_mode": "host"}
        if mode != "bridge":
            raise ReplayError(f"Container {name}: networkMode {mode!r} is not implemented by the replay "
                              f"(bridge or host); implement it in tests/replay/engine.py")
        (network,) = inputs["networksAdvanced"]
        refuse_unknown("Container.networksAdvanced", network, {"name", "ipv4Address", "aliases"})
        return {"network": network["name"],
                "networking_config": {network["name"]: self.client.api.create_endpoint_config(
                    ipv4_address=network.get("ipv4Address"), aliases=network.get("aliases"))}}

    def _command(self, inputs: dict[str, Any]):
        refuse_unknown("Command", inputs, {"create", "triggers", "environment", "dir"})
        self.log(f"command: {inputs['create']}")
        finished = subprocess.run(inputs["create"], shell=True, capture_output=True, text=True,
                                  cwd=inputs.get("dir"), env=None if not inputs.get("environment") else {
                                      **__import__("os").environ, **inputs["environment"]},
                                  timeout=COMMAND_TIMEOUT_SECONDS)
        if finished.returncode != 0:
            raise ReplayError(f"command failed ({finished.returncode}): {inputs['create']}\n"
                              f"{finished.stdout}{finished.stderr}")
        return f"command-{abs(hash(inputs['create']))}", {"stdout": finished.stdout, "stderr": finished.stderr}


def remove_stack(stack: str, *, purge: bool, log: Callable[[str], None] = print) -> None:
    """What `pulumi destroy` does for the stack: containers and network; the data volume only with purge."""
    client = docker.from_env(timeout=120)
    label = f"{constants.LABEL_STACK}={stack}"
    for container in client.containers.list(all=True, filters={"label": label}):
        container.remove(force=True)
        log(f"container {container.name}: removed")
    for network in client.networks.list(filters={"label": label}):
        network.remove()
        log(f"network {network.name}: removed")
    if purge:
        for volume in client.volumes.list(filters={"label": label}):
            volume.remove(force=True)
            log(f"volume {volume.name}: removed")
