"""Drive a replayed stack from tests: `python -m tests.replay up/down`, its containers, its front door."""
from __future__ import annotations

import json
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


@dataclass
class ReplayedStack:
    name: str
    overrides: dict[str, str]
    outputs: dict = field(default_factory=dict)

    def up(self, **extra: str) -> dict:
        settings = [f"{key}={value}" for key, value in {**self.overrides, **extra}.items()]
        command = [sys.executable, "-m", "tests.replay", "up", "--stack", self.name]
        for setting in settings:
            command += ["--set", setting]
        finished = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True,
                                  timeout=UP_TIMEOUT_SECONDS)
        assert finished.returncode == 0, f"replay up failed:\n{finished.stderr[-4000:]}"
        self.outputs = json.loads(finished.stdout.strip().splitlines()[-1])
        return self.outputs

    def down(self, purge: bool = False) -> None:
        command = [sys.executable, "-m", "tests.replay", "down", "--stack", self.name] + (["--purge"] if purge else [])
        subprocess.run(command, cwd=REPO_ROOT, check=True, capture_output=True, timeout=120)

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
