"""The release history of a training stack: which war each successful `up` left serving, so that `make
rollback` can return to the previous one.

One JSON file per stack, outside git: `.pulumi-state/releases/<stack>.json` for scripts/stack, the stack's
own folder under `.replay/` for the replay. An entry is the war's URL and its sha256 as the running app
containers' labels report it (what really serves, not what was asked for); a new entry is added only when
the war changed. "Previous" is the entry before the last. Its war is still in the artifact cache under
`sha256/<hex>/` (components/artifacts.py), so a rollback pinned to that sha256 fetches nothing.
"""
from __future__ import annotations

import json
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from components import constants

LABEL_WAR_SHA256 = "companynews.war-sha256"


class ReleaseHistoryError(RuntimeError):
    pass


@dataclass(frozen=True)
class Release:
    war_url: str
    war_sha256: str
    recorded_at: str = ""


def load(path: Path) -> list[Release]:
    if not path.exists():
        return []
    try:
        return [Release(**entry) for entry in json.loads(path.read_text())["releases"]]
    except (ValueError, KeyError, TypeError) as error:
        raise ReleaseHistoryError(f"{path}: not a release history ({error}); move it away to start a new one")


def record(path: Path, war_url: str, war_sha256: str) -> bool:
    """Add the release now serving, unless it is the last one recorded; True when added."""
    releases = load(path)
    if releases and releases[-1].war_sha256 == war_sha256:
        return False
    releases.append(Release(war_url, war_sha256, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())))
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps({"releases": [asdict(release) for release in releases]}, indent=1) + "\n")
    partial.replace(path)
    return True


def previous(path: Path) -> Release:
    """The release before the one serving now."""
    releases = load(path)
    if len(releases) < 2:
        raise ReleaseHistoryError(f"{path}: {len(releases)} release(s) recorded, so there is no previous one to "
                                  f"return to (each `up` that changes the war records one)")
    return releases[-2]


def serving_war_sha256(stack: str) -> str:
    """The sha256 of the war the stack's running app containers carry ('' when none runs). Two values mean a
    hand-over that did not finish: the history is then left as it is."""
    found = subprocess.run(
        ["docker", "ps", "--filter", f"label={constants.LABEL_STACK}={stack}",
         "--filter", f"label={constants.LABEL_ROLE}=app", "--format", f'{{{{.Label "{LABEL_WAR_SHA256}"}}}}'],
        capture_output=True, text=True, timeout=30)
    values = set(found.stdout.split()) if found.returncode == 0 else set()
    return values.pop() if len(values) == 1 else ""
