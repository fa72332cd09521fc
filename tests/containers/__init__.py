"""Container tests: each image under docker/ on the real Docker engine. Shared helpers live here.

Tests reach containers only through ports published on 127.0.0.1, and every container and volume they
create carries the cn-test- prefix and is removed by the fixture that made it.
"""
from __future__ import annotations

import time
import uuid
from typing import Callable, TypeVar

import docker
import docker.errors
import requests

NAME_PREFIX = "cn-test-"
# How the Pulumi program runs every container (components/docker_host.py): the tests run them alike.
HARDENING = dict(
    read_only=True,
    tmpfs={"/tmp": "rw,nosuid,nodev,noexec,size=128m"},
    cap_drop=["ALL"],
    security_opt=["no-new-privileges:true"],
)
# Docker's health checks every half second instead of the image's 10 s; the command stays the image's.
FAST_HEALTHCHECK = {"interval": 500_000_000, "start_period": 60_000_000_000}
REQUEST_TIMEOUT = 5  # seconds, for every HTTP request a test sends

T = TypeVar("T")


def unique_name(purpose: str) -> str:
    return f"{NAME_PREFIX}{purpose}-{uuid.uuid4().hex[:8]}"


def wait_for(probe: Callable[[], T | None], timeout: float, what: str, interval: float = 0.1) -> T:
    """Call `probe` until it returns something other than None or False; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result is not None and result is not False:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(interval)


def get_or_none(url: str, **options) -> requests.Response | None:
    """GET `url`; None when nothing answers (connection refused, reset or timed out)."""
    try:
        return requests.get(url, timeout=REQUEST_TIMEOUT, **options)
    except requests.RequestException:
        return None


def wait_for_status(url: str, status: int = 200, timeout: float = 60) -> requests.Response:
    def probe() -> requests.Response | None:
        response = get_or_none(url, allow_redirects=False)
        return response if response is not None and response.status_code == status else None

    return wait_for(probe, timeout, f"GET {url} answering {status}")


def published_url(container, port: int = 8080) -> str:
    """http://127.0.0.1:<host port>/ of a container that published `port` on 127.0.0.1."""
    container.reload()
    bindings = container.attrs["NetworkSettings"]["Ports"].get(f"{port}/tcp") or []
    host_ports = [b["HostPort"] for b in bindings if b["HostIp"] == "127.0.0.1"]
    assert host_ports, f"{container.name} publishes no port {port} on 127.0.0.1: {bindings}"
    return f"http://127.0.0.1:{host_ports[0]}/"


def exec_output(container, command: list[str]) -> str:
    result = container.exec_run(command)
    assert result.exit_code == 0, f"{command} in {container.name} exited {result.exit_code}: {result.output!r}"
    return result.output.decode()


def process_uids(container, pid: int = 1) -> list[int]:
    """Real, effective, saved and filesystem uid of a process in the container, from /proc."""
    status = exec_output(container, ["cat", f"/proc/{pid}/status"])
    line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    return [int(uid) for uid in line.split()[1:]]


def health_status(container) -> str:
    container.reload()
    return container.attrs["State"].get("Health", {}).get("Status", "")


class DockerResources:
    """Creates containers and volumes with the test prefix and removes every one of them in `remove_all`."""

    def __init__(self, client: docker.DockerClient):
        self.client = client
        self.containers: list = []
        self.volumes: list = []

    def volume(self, purpose: str = "data"):
        volume = self.client.volumes.create(unique_name(purpose))
        self.volumes.append(volume)
        return volume

    def run(self, image: str, purpose: str, publish: int | None = 8080, **options):
        """Start a detached container; `publish` goes to a random port on 127.0.0.1."""
        if publish is not None:
            options.setdefault("ports", {f"{publish}/tcp": ("127.0.0.1", None)})
        container = self.client.containers.create(image, name=unique_name(purpose), **options)
        self.containers.append(container)
        container.start()
        return container

    def remove_all(self) -> None:
        for container in reversed(self.containers):
            try:
                container.remove(force=True, v=True)
            except docker.errors.NotFound:
                pass
        for volume in self.volumes:
            try:
                volume.remove(force=True)
            except docker.errors.NotFound:
                pass
