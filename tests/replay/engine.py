"""The replay's engine: Pulumi's mock runtime plus a per-stack state file, applying the program to Docker the
way `pulumi up` with pulumi-docker and pulumi-command would.

The Pulumi engine and its providers cannot run here, so this stands in for them. Like the engine it keeps the
stack's state (inputs and outputs by URN, `.replay/<stack>/state.json`), diffs each resource's new inputs
against it and chooses one step: create, no change, in-place update (applying only what the provider applies
in place), replace (delete-before-replace where the provider asks for it) or, once the program has finished,
delete of every resource it no longer declares. `destroy` deletes what the state records, nothing else: no
container, network or volume is ever found by a label.

Where the rules come from (read, not copied):
- Container, Network, Volume are pulumi-docker's bridge of kreuzwerker/terraform-provider-docker;
  pulumi/pulumi-docker provider/resources.go (commit 37a4904d053ea0b6e79b0777efc7bc6f36c69542) maps
  docker_container with `DeleteBeforeReplace: true`. The ForceNew fields are those of
  internal/provider/resource_docker_container.go (kreuzwerker commit 042f771a818e9d4b8c37fa2993a37b38b3822cab);
  its update (resource_docker_container_funcs.go, commit 1f7249d6fcb5395f8d3ad2f30976761a54f79d50,
  resourceDockerContainerUpdate) applies only restart, max_retry_count, cpu_shares, memory, cpu_set and
  memory_swap through ContainerUpdate; its delete stops the container with `destroy_grace_seconds` as the
  stop timeout (0, an immediate SIGKILL, when unset) and then force-removes it; its read deletes a container
  that is not running when must_run is true (the default), and reads the health check back from Docker.
  Every field of docker_network and docker_volume is ForceNew (they have no update).
- Image is pulumi-docker's native resource (provider/provider.go, commit 00e49bb760b32d5f2f78d1adb6753ea8026c039c):
  Check adds `contextDigest`, a hash of the build context, to the inputs; Diff reports any changed input as an
  update (never a replace), Update rebuilds, Delete does nothing (the image stays), Read returns the state as
  it is, so a refresh never notices a deleted image.
- command:local:Command (pulumi-command): a change to `triggers` replaces it (create runs again); any other
  change is an update, which runs `update`, or `create` when there is no update command.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import docker
import docker.errors
import docker.types
import pulumi
from pulumi.runtime.mocks import MockMonitor

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
SECRET_SIGNATURE = "4dabf18193072939515e22adb298388d"
COMMAND_TIMEOUT_SECONDS = 600
# Stacks that belong to people, not to tests: the replay touches them only when told --i-mean-it.
USER_STACKS = ("training", "production")

CONTAINER = "docker:index/container:Container"
NETWORK = "docker:index/network:Network"
VOLUME = "docker:index/volume:Volume"
IMAGE = "docker:index/image:Image"
COMMAND = "command:local:Command"

# docker_container fields without ForceNew (resource_docker_container.go, see above), in Pulumi's names.
# Everything else the program sets on a Container replaces it when it changes.
CONTAINER_UPDATABLE = {"restart", "maxRetryCount", "cpuShares", "memory", "cpuSet", "memorySwap", "tmpfs",
                       "healthcheck", "destroyGraceSeconds", "mustRun", "rm", "start", "wait", "waitTimeout",
                       "attach", "logs", "removeVolumes", "init", "containerReadRefreshTimeoutMilliseconds"}
# Of those, what resourceDockerContainerUpdate really changes on the running container.
CONTAINER_APPLIED_IN_PLACE = {"restart", "maxRetryCount", "cpuShares", "memory", "cpuSet", "memorySwap"}


class ReplayError(RuntimeError):
    pass


def state_root() -> Path:
    return Path(os.environ.get("COMPANYNEWS_REPLAY_STATE", REPO_ROOT / ".replay"))


def state_path(stack: str) -> Path:
    """The stack's own folder holds its state; nothing of another stack is in it."""
    return state_root() / stack / "state.json"


def reveal(value: Any) -> Any:
    """Secrets arrive wrapped in the mock runtime; the engine would hand the provider plain values."""
    if isinstance(value, dict):
        if SECRET_SIGNATURE in value:
            return reveal(value.get("value"))
        return {key: reveal(item) for key, item in value.items()}
    if isinstance(value, list):
        return [reveal(item) for item in value]
    return value


def canonical(value: Any) -> Any:
    """Inputs as the state stores them: whole floats (protobuf doubles) as ints, empty values dropped."""
    if isinstance(value, dict):
        return {key: canonical(item) for key, item in sorted(value.items()) if item not in (None, [], {})}
    if isinstance(value, list):
        return [canonical(item) for item in value]
    if isinstance(value, float) and value == int(value):
        return int(value)
    return value


def whole(number: Any) -> int:
    """Numbers cross the mock monitor as protobuf doubles; Docker wants integers."""
    if float(number) != int(float(number)):
        raise ReplayError(f"{number!r} is not a whole number")
    return int(float(number))


DURATION_UNITS_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000,
                     "h": 3_600_000_000_000}


def duration_ns(text: str) -> int:
    """A Go duration such as '5s', '250ms', '2m0s' or '1m30s' in nanoseconds."""
    total, number, rest = 0, "", text
    if not text:
        raise ReplayError("empty duration")
    while rest:
        digits = len(rest) - len(rest.lstrip("0123456789."))
        number, rest = rest[:digits], rest[digits:]
        unit = next((u for u in ("ns", "us", "ms", "h", "m", "s") if rest.startswith(u)), None)
        if not number or unit is None:
            raise ReplayError(f"duration {text!r} is not a Go duration such as 5s, 250ms or 2m0s")
        total += int(float(number) * DURATION_UNITS_NS[unit])
        rest = rest[len(unit):]
    return total


def go_duration(nanoseconds: int) -> str:
    """How Go's time.Duration.String() writes a whole number of seconds or milliseconds (what the provider's
    read puts into the state): 5s, 2m0s, 1h0m0s, 250ms."""
    if nanoseconds % 1_000_000_000:
        return f"{nanoseconds // 1_000_000}ms"
    seconds = nanoseconds // 1_000_000_000
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    if hours:
        return f"{hours}h{minutes}m{seconds}s"
    if minutes:
        return f"{minutes}m{seconds}s"
    return f"{seconds}s"


def refuse_unknown(typ: str, inputs: dict[str, Any], implemented: set[str]) -> None:
    unknown = sorted(key for key, value in inputs.items() if key not in implemented and value not in (None, [], {}))
    if unknown:
        raise ReplayError(f"{typ}: the replay does not implement input(s) {unknown}; implement them in "
                          f"tests/replay/engine.py rather than letting them be ignored")


def check_config_types(stack: str, config: dict[str, str], project_config: dict[str, Any]) -> None:
    """What the engine does before the program runs: a value of a key Pulumi.yaml types must be of that type,
    or it stops with its own message, naming the first such key only (pulumi/pulumi
    sdk/go/common/workspace, ValidateStackConfigAndApplyProjectConfig: "Stack '%v' with configuration key
    '%v' must be of type '%v'"). Arrays are JSON (`pulumi config set --path key[0] value` writes one)."""
    def conforms(kind: str, text: str) -> bool:
        try:
            if kind == "integer":
                return str(int(text)) == text.strip()
            if kind == "boolean":
                return text in ("true", "false")
            if kind == "array":
                return isinstance(json.loads(text), list)
        except ValueError:
            return False
        return True

    for key, schema in project_config.items():
        full_key = key if ":" in key else f"companynews:{key}"
        kind = schema.get("type") if isinstance(schema, dict) else None
        if kind and full_key in config and not conforms(kind, config[full_key]):
            shown = f"array<{schema.get('items', {}).get('type', 'string')}>" if kind == "array" else kind
            raise ReplayError(f"Stack '{stack}' with configuration key '{full_key}' must be of type '{shown}'")


# --- state and plan -------------------------------------------------------------------------------------


@dataclass
class ResourceState:
    urn: str
    type: str
    id: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    # The resource options the engine keeps in its state, and uses on delete (the program is not run then).
    retain_on_delete: bool = False
    dependencies: list[str] = field(default_factory=list)


@dataclass
class StackState:
    stack: str
    resources: dict[str, ResourceState] = field(default_factory=dict)   # in creation order
    retained: list[dict[str, str]] = field(default_factory=list)        # deleted with retain_on_delete

    @classmethod
    def load(cls, stack: str) -> "StackState":
        path = state_path(stack)
        if not path.exists():
            return cls(stack)
        data = json.loads(path.read_text())
        return cls(stack, {item["urn"]: ResourceState(**item) for item in data["resources"]},
                   data.get("retained", []))

    def save(self) -> None:
        path = state_path(self.stack)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps({"stack": self.stack, "resources": [vars(r) for r in self.resources.values()],
                                       "retained": self.retained}, indent=1, sort_keys=True))
        partial.replace(path)


@dataclass
class Plan:
    """What one `up` or `destroy` did, step by step, in the words `pulumi up` uses."""

    steps: list[tuple[str, str, str]] = field(default_factory=list)    # (op, urn, detail)
    unchanged: int = 0
    symbols = {"create": "+", "update": "~", "replace": "+-", "delete": "-"}

    def add(self, op: str, urn: str, detail: str = "") -> None:
        self.steps.append((op, urn, detail))

    def counts(self) -> dict[str, int]:
        counts = {op: 0 for op in self.symbols}
        for op, _, _ in self.steps:
            counts[op] += 1
        return {**counts, "unchanged": self.unchanged}

    def lines(self) -> list[str]:
        shown = [f"{self.symbols[op]} {op} {urn.split('::')[-1]} ({urn.split('::')[2].split('$')[-1]})"
                 + (f": {detail}" if detail else "") for op, urn, detail in self.steps]
        counts = self.counts()
        changes = sum(count for op, count in counts.items() if op != "unchanged")
        return shown + [f"{changes} change(s): " + ", ".join(f"{counts[op]} to {op}" for op in self.symbols)
                        + f"; {self.unchanged} unchanged"]


def deletion_order(resources) -> list[ResourceState]:
    """Every resource after all that depend on it (by the dependencies the state recorded), as the engine
    orders deletes; creation order alone is not enough once a failed update left resources out of it."""
    remaining = list(resources)
    ordered = []
    while remaining:
        depended_on = {dependency for resource in remaining for dependency in resource.dependencies}
        free = [resource for resource in remaining if resource.urn not in depended_on] or remaining[-1:]
        ordered += free
        remaining = [resource for resource in remaining if resource not in free]
    return ordered


# --- the monitor: what the engine would know of each registration ---------------------------------------


@dataclass(frozen=True)
class Registration:
    urn: str
    replace_on_changes: tuple[str, ...]
    delete_before_replace: bool
    retain_on_delete: bool
    dependencies: tuple[str, ...]


class ReplayMonitor(MockMonitor):
    """The SDK's mock monitor, which hands the provider mock only type, name and inputs, plus the URN and the
    resource options the real engine acts on (replace_on_changes, delete_before_replace, retain_on_delete,
    depends_on), passed to the mocks on the registering thread."""

    def RegisterResource(self, request):
        if request.type != "pulumi:pulumi:Stack":
            self.mocks.registering.value = Registration(
                urn=self.make_urn(request.parent, request.type, request.name),
                replace_on_changes=tuple(request.replaceOnChanges),
                delete_before_replace=bool(request.deleteBeforeReplace),
                retain_on_delete=bool(request.retainOnDelete),
                dependencies=tuple(request.dependencies))
        return super().RegisterResource(request)


# --- the engine ----------------------------------------------------------------------------------------


class ReplayMocks(pulumi.runtime.Mocks):
    def __init__(self, stack: str, log: Callable[[str], None] = print, refresh: bool = False):
        self.registering = threading.local()
        self._local = threading.local()
        self._lock = threading.Lock()
        self.log = log
        self.refresh = refresh
        self.state = StackState.load(stack)
        self.declared: set[str] = set()
        self.plan = Plan()
        self.providers = {NETWORK: NetworkProvider(self), VOLUME: VolumeProvider(self), IMAGE: ImageProvider(self),
                          CONTAINER: ContainerProvider(self), COMMAND: CommandProvider(self)}

    @property
    def client(self) -> docker.DockerClient:
        # The mock monitor registers resources from several threads; one client per thread.
        if not hasattr(self._local, "client"):
            self._local.client = docker.from_env(timeout=600)
        return self._local.client

    def monitor(self) -> ReplayMonitor:
        return ReplayMonitor(self)

    def call(self, args: pulumi.runtime.MockCallArgs):
        raise ReplayError(f"invoke {args.token} is not implemented by the replay")

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        if not args.custom:
            return args.name, dict(args.inputs)
        registration: Registration = self.registering.value
        provider = self.providers.get(args.typ)
        if provider is None:
            raise ReplayError(f"{args.typ} ({args.name}): the replay only applies Docker and local Command resources")
        inputs = canonical(reveal(dict(args.inputs)))
        inputs = provider.check(inputs)
        urn = registration.urn
        with self._lock:
            self.declared.add(urn)
            old = self.state.resources.get(urn)
        if old is not None and self.refresh:
            old = provider.read(old)
            if old is None:
                self.log(f"refresh: {urn.split('::')[-1]} is gone; it will be created again")
                with self._lock:
                    self.state.resources.pop(urn, None)
                    self.state.save()
        resource_id, outputs, op, detail = self._step(provider, registration, old, inputs)
        with self._lock:
            if op:
                self.plan.add(op, urn, detail)
            else:
                self.plan.unchanged += 1
            self.state.resources.pop(urn, None)
            # Adopted again (a retained volume): no longer something only a purge may remove.
            self.state.retained = [kept for kept in self.state.retained if kept["id"] != resource_id]
            self.state.resources[urn] = ResourceState(
                urn=urn, type=args.typ, id=resource_id, inputs=inputs, outputs=outputs,
                retain_on_delete=registration.retain_on_delete, dependencies=list(registration.dependencies))
            self.state.save()
        return resource_id, {**args.inputs, **outputs}

    def _step(self, provider: "Provider", registration: Registration, old: ResourceState | None,
              inputs: dict[str, Any]) -> tuple[str, dict, str, str]:
        if old is None:
            resource_id, outputs = provider.create(inputs)
            return resource_id, outputs, "create", ""
        changed = provider.diff(old, inputs)
        if not changed:
            return old.id, old.outputs, "", ""
        forced = sorted(key for key in changed if provider.replaces(key)
                        or key in registration.replace_on_changes or "*" in registration.replace_on_changes)
        if forced:
            # Delete first, then create: a container name, a network name and a volume name can exist once.
            # What depends on a replaced network or volume goes first (its containers name them in their
            # inputs, so the engine's delete-before-replace replaces them too); it is created again when the
            # program registers it. A replaced container or command leaves its dependents alone.
            if isinstance(provider, DockerObjectProvider):
                self._delete_dependents(old.urn)
            provider.delete(old)
            resource_id, outputs = provider.create(inputs)
            return resource_id, outputs, "replace", ", ".join(forced)
        resource_id, outputs = provider.update(old, inputs, changed)
        return resource_id, outputs, "update", ", ".join(sorted(changed))

    def _delete_dependents(self, urn: str) -> None:
        with self._lock:
            dependents = [r for r in self.state.resources.values() if urn in r.dependencies]
        for dependent in reversed(dependents):
            self._delete_dependents(dependent.urn)
            with self._lock:
                if dependent.urn in self.state.resources:
                    self.providers[dependent.type].delete(dependent)
                    self.state.resources.pop(dependent.urn)
                    self.state.save()

    def delete_undeclared(self) -> None:
        """After a program that ran to its end: what the state holds and the program no longer declares goes,
        dependents before what they depend on."""
        for resource in deletion_order(self.state.resources.values()):
            if resource.urn not in self.declared:
                self.delete(resource)

    def delete(self, resource: ResourceState) -> None:
        provider = self.providers[resource.type]
        if resource.retain_on_delete:
            self.log(f"{resource.urn.split('::')[-1]}: retained on delete (removed from the state only)")
            self.state.retained.append({"type": resource.type, "id": resource.id})
        else:
            provider.delete(resource)
        self.plan.add("delete", resource.urn)
        self.state.resources.pop(resource.urn)
        self.state.save()


class Provider:
    force_new: set[str] | None = None   # None: every field is ForceNew

    def __init__(self, engine: ReplayMocks):
        self.engine = engine

    @property
    def client(self) -> docker.DockerClient:
        return self.engine.client

    def log(self, message: str) -> None:
        self.engine.log(message)

    def check(self, inputs: dict[str, Any]) -> dict[str, Any]:
        return inputs

    def observed(self, resource: ResourceState) -> dict[str, Any]:
        """Fields the provider's read puts into the state in its own form; the diff compares against these."""
        return {}

    def diff(self, old: ResourceState, inputs: dict[str, Any]) -> set[str]:
        seen = {**old.inputs, **self.observed(old)}
        return {key for key in set(seen) | set(inputs) if seen.get(key) != inputs.get(key)}

    def replaces(self, key: str) -> bool:
        return True if self.force_new is None else key in self.force_new

    def read(self, resource: ResourceState) -> ResourceState | None:
        return resource

    def create(self, inputs: dict[str, Any]) -> tuple[str, dict]:
        raise NotImplementedError

    def update(self, old: ResourceState, inputs: dict[str, Any], changed: set[str]) -> tuple[str, dict]:
        raise ReplayError(f"{old.urn}: {sorted(changed)} changed, which this provider cannot update")

    def delete(self, resource: ResourceState) -> None:
        raise NotImplementedError


class DockerObjectProvider(Provider):
    """Networks and volumes: found by the ID the state holds, removed when deleted."""

    collection = ""     # "networks" or "volumes" of the Docker client

    def live(self, resource: ResourceState):
        try:
            return getattr(self.client, self.collection).get(resource.id)
        except docker.errors.NotFound:
            return None

    def read(self, resource):
        return resource if self.live(resource) is not None else None

    def delete(self, resource):
        found = self.live(resource)
        if found is not None:
            found.remove()
            self.log(f"{self.collection[:-1]} {found.name}: removed")


class NetworkProvider(DockerObjectProvider):
    collection = "networks"

    def create(self, inputs):
        refuse_unknown("Network", inputs, {"name", "driver", "ipamConfigs", "labels"})
        name = inputs["name"]
        if any(existing.name == name for existing in self.client.networks.list(names=[name])):
            raise ReplayError(f"network {name} already exists, and the state does not hold it (as the provider, "
                              f"the replay refuses to adopt it)")
        network = self.client.networks.create(
            name, driver=inputs.get("driver", "bridge"),
            ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=config["subnet"])
                                                       for config in inputs.get("ipamConfigs", [])]),
            labels={item["label"]: item["value"] for item in inputs.get("labels", [])})
        self.log(f"network {name}: created")
        return network.id, {"name": name}


class VolumeProvider(DockerObjectProvider):
    collection = "volumes"

    def create(self, inputs):
        refuse_unknown("Volume", inputs, {"name", "labels"})
        # Docker's volume create answers with the existing volume of that name: a volume kept by an earlier
        # destroy (retain_on_delete) is adopted again, data and all.
        volume = self.client.volumes.create(
            inputs["name"], labels={item["label"]: item["value"] for item in inputs.get("labels", [])})
        self.log(f"volume {volume.name}: created (or adopted)")
        return volume.name, {"name": volume.name}


def context_digest(context: str, dockerfile: str) -> str:
    """What the native Image provider's Check adds as build.contextDigest: a hash over the context's files."""
    digest = hashlib.sha256()
    root = Path(context)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(dockerfile.encode())
    return digest.hexdigest()


class ImageProvider(Provider):
    force_new = set()   # the native provider's Diff never asks for a replacement

    def check(self, inputs):
        refuse_unknown("Image", inputs, {"imageName", "skipPush", "build", "buildOnPreview"})
        build = dict(inputs["build"])
        refuse_unknown("Image.build", build, {"context", "args", "dockerfile"})
        build["contextDigest"] = context_digest(build["context"], build.get("dockerfile", "Dockerfile"))
        return {**inputs, "build": build}

    def create(self, inputs):
        if inputs.get("skipPush") is not True:
            raise ReplayError(f"Image {inputs['imageName']}: only skipPush=True images can be replayed (no registry)")
        build = inputs["build"]
        self.log(f"image {inputs['imageName']}: building {build['context']}")
        try:
            image, _ = self.client.images.build(
                path=build["context"], dockerfile=build.get("dockerfile", "Dockerfile"), tag=inputs["imageName"],
                buildargs=build.get("args") or {}, rm=True, forcerm=True)
        except docker.errors.BuildError as error:
            tail = "".join(str(line.get("stream", line.get("error", ""))) for line in list(error.build_log)[-20:])
            raise ReplayError(f"Image {inputs['imageName']}: build failed: {error}\n{tail}") from error
        # A local-only image's repoDigest is its image ID (pulumi_docker/image.py, repo_digest).
        return image.id, {"repoDigest": image.id, "imageName": inputs["imageName"]}

    def update(self, old, inputs, changed):
        return self.create(inputs)

    def delete(self, resource):
        pass    # the native provider's Delete leaves the image where it is


class ContainerProvider(Provider):
    force_new = None

    def replaces(self, key):
        return key not in CONTAINER_UPDATABLE

    def check(self, inputs):
        refuse_unknown("Container", inputs, {
            "name", "image", "user", "envs", "ports", "mounts", "networksAdvanced", "restart", "healthcheck",
            "labels", "readOnly", "tmpfs", "capabilities", "securityOpts", "memory", "memorySwap", "ulimits",
            "logDriver", "logOpts", "networkMode", "destroyGraceSeconds"})
        return inputs

    def observed(self, resource):
        """The provider's read: the health check as Docker keeps it (nanoseconds, written back as Go durations),
        the memory limits, the log options Docker applied (the daemon's defaults merged in)."""
        try:
            attrs = self.client.api.inspect_container(resource.id)
        except docker.errors.NotFound:
            return {}
        seen: dict[str, Any] = {}
        health = attrs["Config"].get("Healthcheck")
        if health and "healthcheck" in resource.inputs:
            seen["healthcheck"] = canonical({
                "tests": health.get("Test"), "interval": go_duration(health.get("Interval", 0)),
                "timeout": go_duration(health.get("Timeout", 0)), "retries": health.get("Retries", 0),
                "startPeriod": go_duration(health.get("StartPeriod", 0))})
        host = attrs["HostConfig"]
        if "memory" in resource.inputs:
            seen["memory"] = host["Memory"] // (1024 * 1024)
        if "logOpts" in resource.inputs:
            seen["logOpts"] = dict(sorted((host.get("LogConfig") or {}).get("Config", {}).items()))
        return seen

    def read(self, resource):
        try:
            container = self.client.containers.get(resource.id)
        except docker.errors.NotFound:
            return None
        if container.status != "running":
            # must_run (default true): the provider's read deletes a container that is not running.
            self.log(f"refresh: container {container.name} is {container.status}: removed, to be created again")
            self.delete(resource)
            return None
        return resource

    def create(self, inputs):
        name = inputs["name"]
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
            **self._network_options(name, inputs),
            restart_policy={"Name": inputs["restart"]} if inputs.get("restart") else None,
            healthcheck=None if not health else {
                "test": health["tests"],
                "interval": duration_ns(health.get("interval", "0s")),
                "timeout": duration_ns(health.get("timeout", "0s")),
                "retries": whole(health.get("retries", 0)),
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

    def update(self, old, inputs, changed):
        applied = sorted(changed & CONTAINER_APPLIED_IN_PLACE)
        if applied:
            resources = {"mem_limit": f"{whole(inputs['memory'])}m" if inputs.get("memory") else None,
                         "memswap_limit": f"{whole(inputs['memorySwap'])}m" if inputs.get("memorySwap") else None}
            policy = {"Name": inputs["restart"]} if inputs.get("restart") else None
            self.client.api.update_container(old.id, restart_policy=policy,
                                             **{k: v for k, v in resources.items() if v})
        ignored = sorted(changed - CONTAINER_APPLIED_IN_PLACE)
        self.log(f"container {inputs['name']}: updated in place ({', '.join(applied) or 'nothing applied'}"
                 + (f"; recorded only, the container keeps its old {', '.join(ignored)}" if ignored else "") + ")")
        return old.id, old.outputs

    def delete(self, resource):
        grace = whole(resource.inputs.get("destroyGraceSeconds") or 0)
        try:
            container = self.client.containers.get(resource.id)
        except docker.errors.NotFound:
            return
        started = time.monotonic()
        # ContainerStop with the grace period as its timeout: SIGTERM (the image's STOPSIGNAL), then SIGKILL.
        container.stop(timeout=grace)
        stopped_after = time.monotonic() - started
        exit_code = container.wait(timeout=60)["StatusCode"]
        container.remove(force=True)
        self.log(f"container {resource.inputs['name']}: stopped in {stopped_after:.1f} s (grace {grace} s), "
                 f"exit code {exit_code}, removed")

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


class CommandProvider(Provider):
    force_new = {"triggers"}

    def check(self, inputs):
        refuse_unknown("Command", inputs, {"create", "triggers", "environment", "dir"})
        return inputs

    def create(self, inputs):
        self.log(f"command: {inputs['create']}")
        finished = subprocess.run(inputs["create"], shell=True, capture_output=True, text=True,
                                  cwd=inputs.get("dir"), env=None if not inputs.get("environment") else {
                                      **os.environ, **inputs["environment"]},
                                  timeout=COMMAND_TIMEOUT_SECONDS)
        if finished.returncode != 0:
            raise ReplayError(f"command failed ({finished.returncode}): {inputs['create']}\n"
                              f"{finished.stdout}{finished.stderr}")
        digest = hashlib.sha256(inputs["create"].encode()).hexdigest()[:16]
        return f"command-{digest}", {"stdout": finished.stdout, "stderr": finished.stderr}

    def update(self, old, inputs, changed):
        return self.create(inputs)

    def delete(self, resource):
        pass    # no `delete` command is declared


def destroy(stack: str, *, purge: bool = False, log: Callable[[str], None] = print) -> Plan:
    """`pulumi destroy`: delete what the stack's state holds, in reverse creation order, with the options
    recorded there (retain_on_delete as of the last `up`: the program does not run). With `purge`, also
    remove what was retained (the data volume), by the IDs the state recorded — never by a label."""
    engine = ReplayMocks(stack, log=log)
    for resource in deletion_order(engine.state.resources.values()):
        engine.delete(resource)
    if purge:
        for retained in list(engine.state.retained):
            if retained["type"] == VOLUME:
                VolumeProvider(engine).delete(ResourceState(urn="", type=VOLUME, id=retained["id"], inputs={},
                                                            outputs={}))
            engine.state.retained.remove(retained)
    engine.state.save()
    return engine.plan


def data_volumes_of(stack: str) -> list[str]:
    """The data volumes a stack's state names: live ones and those kept by an earlier destroy."""
    state = StackState.load(stack)
    return ([r.id for r in state.resources.values() if r.type == VOLUME]
            + [r["id"] for r in state.retained if r["type"] == VOLUME])
