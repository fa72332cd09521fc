"""Drive a replayed stack from tests: `python -m tests.replay up/down`, its containers, its front door.

Every test module gets a stack of its own (`for_module`): name, container names, labels, data volume, host
ports and subnet all derived from the module's name, distinct from each other and from anything a person's
`training` stack or `make bench` uses.
"""
from __future__ import annotations

import ipaddress
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import docker
import requests

from components import constants
from tests.program import REPO_ROOT

UP_TIMEOUT_SECONDS = 900
REPLAY_TESTS_DIR = Path(__file__).resolve().parent
# Test stacks take their front door and stats ports from here (slot n: FIRST_TEST_PORT + 2n and + 2n + 1),
# and their subnet from TEST_SUBNETS. Nothing of a person's stack is in these ranges: `training` defaults to
# 8080, 8404 and 172.30.81.0/24 (Pulumi.yaml), `make bench` takes 18380-18382, 18704 and 172.30.84.0/24.
FIRST_TEST_PORT = 19100
TEST_SUBNETS = ipaddress.IPv4Network("172.30.128.0/18")
TEST_STACK_PREFIX = "test-"


def replay_test_modules() -> list[str]:
    """Every replay test module, by name; a module's slot is its place in this list, so no two collide."""
    return sorted(path.stem for path in REPLAY_TESTS_DIR.glob("test_*.py"))


@dataclass(frozen=True)
class ModuleStackPlacement:
    name: str
    http_port: int
    stats_port: int
    subnet: str

    @classmethod
    def of_module(cls, module_name: str) -> "ModuleStackPlacement":
        stem = module_name.rsplit(".", 1)[-1]
        modules = replay_test_modules()
        if stem not in modules:
            raise ValueError(f"{module_name}: test stacks are for modules tests/replay/test_*.py ({modules})")
        slot = modules.index(stem)
        subnet = list(TEST_SUBNETS.subnets(new_prefix=24))[slot]
        name = TEST_STACK_PREFIX + re.sub(r"[^a-z0-9]+", "-", stem.removeprefix("test_").lower()).strip("-")
        return cls(name, FIRST_TEST_PORT + 2 * slot, FIRST_TEST_PORT + 2 * slot + 1, str(subnet))

    def overrides(self) -> dict[str, str]:
        return {"httpPort": str(self.http_port), "statsPort": str(self.stats_port), "dockerSubnet": self.subnet}


@dataclass
class ReplayedStack:
    name: str
    overrides: dict[str, str]
    outputs: dict = field(default_factory=dict)
    plan: list[str] = field(default_factory=list)   # what the last up printed: `+ create ...`, the totals
    log: str = ""                                   # the last up's stderr

    @classmethod
    def for_module(cls, module_name: str, overrides: dict[str, str]) -> "ReplayedStack":
        """The module's own stack: its name, ports and subnet (ModuleStackPlacement) over `overrides`."""
        placement = ModuleStackPlacement.of_module(module_name)
        return cls(placement.name, {**overrides, **placement.overrides()})

    @classmethod
    def fresh_for_module(cls, module_name: str, overrides: dict[str, str]) -> "ReplayedStack":
        """The module's own stack brought up from nothing (what an interrupted earlier run left is purged
        first), once its front door serves."""
        stack = cls.for_module(module_name, overrides)
        stack.down(purge=True)
        stack.up()
        stack.wait_until_serving()
        return stack

    def up(self, *flags: str, action: str = "up", **extra: str) -> dict:
        """`python -m tests.replay up` (or `rollback`) with the stack's settings, `extra` over them, and
        `flags` such as --refresh; keeps the plan it printed in `self.plan`."""
        settings = [f"{key}={value}" for key, value in {**self.overrides, **extra}.items()]
        command = [sys.executable, "-m", "tests.replay", action, "--stack", self.name, *flags]
        for setting in settings:
            command += ["--set", setting]
        finished = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True,
                                  timeout=UP_TIMEOUT_SECONDS)
        assert finished.returncode == 0, f"replay {action} failed:\n{finished.stderr[-4000:]}"
        lines = finished.stdout.strip().splitlines()
        self.outputs, self.plan, self.log = json.loads(lines[-1]), lines[:-1], finished.stderr
        return self.outputs

    def changes(self) -> dict[str, int]:
        """The last up's totals: {'create': n, 'update': n, 'replace': n, 'delete': n, 'unchanged': n}."""
        totals = re.search(r"(\d+) to create, (\d+) to update, (\d+) to replace, (\d+) to delete; (\d+) unchanged",
                           self.plan[-1])
        assert totals, f"no totals in the plan: {self.plan}"
        return dict(zip(("create", "update", "replace", "delete", "unchanged"), map(int, totals.groups())))

    def down(self, purge: bool = False) -> None:
        """`python -m tests.replay down`: delete what the stack's state holds; keeps its log in `self.log`."""
        command = [sys.executable, "-m", "tests.replay", "down", "--stack", self.name] + (["--purge"] if purge else [])
        finished = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
        assert finished.returncode == 0, f"replay down failed:\n{finished.stderr[-4000:]}"
        self.plan, self.log = finished.stdout.strip().splitlines(), finished.stderr

    @property
    def url(self) -> str:
        return self.outputs["url"]

    def containers(self, role: str | None = None) -> list:
        filters = [f"{constants.LABEL_STACK}={self.name}"] + ([f"{constants.LABEL_ROLE}={role}"] if role else [])
        client = docker.from_env()
        return sorted(client.containers.list(all=True, filters={"label": filters}), key=lambda c: c.name)

    def role_of(self, container) -> str:
        """'writer' or 'standby' as the app entrypoint recorded it; '' when the container is not running."""
        container.reload()
        if container.status != "running":
            return ""
        result = container.exec_run(["cat", "/tmp/role"])
        return result.output.decode().strip() if result.exit_code == 0 else ""

    def writer(self, timeout: float = 60.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            writers = [c for c in self.containers("app") if self.role_of(c) == "writer"]
            if len(writers) == 1:
                return writers[0]
            time.sleep(0.2)
        raise AssertionError(f"no single writer within {timeout} s")

    def wait_until_serving(self, path: str = "Read.action", timeout: float = 120.0) -> float:
        """Seconds until the front door answers `path` with 200 straight from the app (not from cache)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            try:
                response = requests.get(self.url + path, timeout=2, cookies={"cn_fresh": "1"})
                if response.status_code == 200:
                    return time.monotonic() - started
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.url}{path} did not answer 200 within {timeout} s")

    def post(self, title: str, body: str = "posted by a test") -> requests.Response:
        return requests.post(self.url + "Post.action", data={"title": title, "body": body},
                             allow_redirects=False, timeout=10)

    def titles_listed(self) -> str:
        """The article list as the app has it now (the fresh cookie bypasses the micro-cache)."""
        response = requests.get(self.url + "Read.action", cookies={"cn_fresh": "1"}, timeout=10)
        assert response.status_code == 200, f"Read.action answered {response.status_code}"
        return response.text


def artifact_overrides(war: Path, static_zip: Path, base_image: str) -> dict[str, str]:
    return {"warUrl": str(war), "staticUrl": str(static_zip), "baseImage": base_image}
