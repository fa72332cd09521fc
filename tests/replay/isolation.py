"""python -m tests.replay.isolation before|after — the proof that the test suite leaves a `training` stack alone.

`before` (run by .ci/run with CI=true, before `make test`): if this host already has a `training` stack (a
person's, or anything named like one), it only notes its containers, network and volume — it never posts to
or changes a person's stack. Otherwise it replays a sentinel `training` stack on the user's defaults (ports
8080 and 8404, subnet 172.30.81.0/24, volume companynews-training-data) and posts an article to it.
`after`: every container has the same ID and start time, the network and volume are the same, and the
sentinel's article is still listed; then it removes the sentinel it made (never a person's stack).
"""
from __future__ import annotations

import json
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

import docker
import docker.errors
import requests

from tests import images
from tests.conftest import BASE_IMAGE
from tests.program import REPO_ROOT
from tests.replay.engine import state_root

STACK = "training"
RECORD = state_root() / "isolation.json"
CONTAINER_PREFIX = f"companynews-{STACK}-"
NETWORK = f"companynews-{STACK}"
VOLUME = f"companynews-{STACK}-data"
SENTINEL_URL = "http://127.0.0.1:8080/"     # the training defaults: httpPort 8080 on 127.0.0.1


def log(message: str) -> None:
    print(f"isolation: {message}", file=sys.stderr, flush=True)


def snapshot(client: docker.DockerClient) -> dict:
    containers = {c.name: [c.id, c.attrs["State"]["StartedAt"]] for c in client.containers.list(all=True)
                  if c.name.startswith(CONTAINER_PREFIX)}
    networks = {n.name: n.id for n in client.networks.list(names=[NETWORK]) if n.name == NETWORK}
    try:
        volume = client.volumes.get(VOLUME).attrs["CreatedAt"]
    except docker.errors.NotFound:
        volume = None
    return {"containers": containers, "networks": networks, "volume": volume}


def replay(*args: str) -> str:
    finished = subprocess.run([sys.executable, "-m", "tests.replay", *args, "--stack", STACK, "--i-mean-it"],
                              cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True, timeout=900)
    if finished.returncode != 0:
        raise SystemExit(f"isolation: `tests.replay {args[0]} --stack {STACK}` failed; its log is above")
    return finished.stdout


def before(client: docker.DockerClient) -> None:
    found = snapshot(client)
    if found["containers"] or found["networks"] or found["volume"]:
        log(f"a {STACK} stack is already here ({len(found['containers'])} containers): noting it, not touching it")
        record = {"sentinel": None, **found}
    else:
        with tempfile.TemporaryDirectory(prefix="companynews-isolation-") as workdir:
            war = images.build_standin_war(client, BASE_IMAGE, Path(workdir))
            static_zip = images.build_static_zip(Path(workdir) / "static.zip")
            log(f"replaying a sentinel {STACK} stack on the user's defaults")
            replay("up", "--set", f"warUrl={war}", "--set", f"staticUrl={static_zip}", "--set",
                   f"baseImage={BASE_IMAGE}", "--set", f"statsPassword={secrets.token_urlsafe(18)}")
        title = f"isolation-sentinel-{secrets.token_hex(4)}"
        posted = requests.post(SENTINEL_URL + "Post.action", data={"title": title, "body": "must survive make test"},
                               allow_redirects=False, timeout=10)
        if posted.status_code != 302:
            raise SystemExit(f"isolation: posting to the sentinel answered {posted.status_code}")
        record = {"sentinel": title, **snapshot(client)}
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    RECORD.write_text(json.dumps(record, indent=1))


def after(client: docker.DockerClient) -> int:
    record = json.loads(RECORD.read_text())
    now = snapshot(client)
    problems = [f"{what} before: {record[what]}, now: {now[what]}"
                for what in ("containers", "networks", "volume") if record[what] != now[what]]
    if record["sentinel"]:
        listed = requests.get(SENTINEL_URL + "Read.action", cookies={"cn_fresh": "1"}, timeout=10)
        if record["sentinel"] not in listed.text:
            problems.append(f"the sentinel's post {record['sentinel']!r} is gone ({listed.status_code})")
    if problems:
        log(f"the test suite touched the {STACK} stack:\n  " + "\n  ".join(problems))
    else:
        log(f"the {STACK} stack kept its {len(now['containers'])} containers (same IDs and start times), its "
            f"network and volume" + (" and its post" if record["sentinel"] else ""))
    if record["sentinel"]:
        replay("down", "--purge")
        log(f"removed the sentinel {STACK} stack")
    RECORD.unlink()
    return 1 if problems else 0


def main(argv: list[str]) -> int:
    if argv not in (["before"], ["after"]):
        print(__doc__, file=sys.stderr)
        return 2
    client = docker.from_env(timeout=300)
    if argv == ["before"]:
        before(client)
        return 0
    return after(client)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
