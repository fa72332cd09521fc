"""Bad settings and bad artifacts stop `up` with one message and no traceback, before anything is touched —
as `pulumi up` prints them: the engine's own type check first, then settings.py's list, then the artifacts."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.program import REPO_ROOT
from tests.replay.stack import ModuleStackPlacement

STACK = ModuleStackPlacement.of_module(__name__).name


def replay_up(*settings: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "tests.replay", "up", "--stack", STACK, "--set", "statsPassword=errors-stats-pw"]
    for setting in settings:
        command += ["--set", setting]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("settings, expected", [
    (("appReplicas=lots",), f"Stack '{STACK}' with configuration key 'companynews:appReplicas' must be of type "
                            f"'integer'"),
    (("appReplicas=0", "httpPort=70000"), "companynews:appReplicas = '0': it must be an integer from 1 to 5"),
    (("warUrl=/nonexistent/companyNews.war",), "warUrl=/nonexistent/companyNews.war"),
])
def test_bad_input_is_one_clean_message(settings, expected):
    finished = replay_up(*settings)
    assert finished.returncode == 1, finished.stderr[-2000:]
    assert expected in finished.stderr, finished.stderr[-2000:]
    assert "Traceback" not in finished.stderr, f"a traceback reached the user:\n{finished.stderr[-2000:]}"
    assert not finished.stdout.strip(), f"nothing may be planned or applied: {finished.stdout}"


def test_people_s_stacks_are_refused_without_i_mean_it():
    for stack in ("training", "production"):
        finished = subprocess.run([sys.executable, "-m", "tests.replay", "down", "--stack", stack],
                                  cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
        assert finished.returncode == 2 and "--i-mean-it" in finished.stderr, finished.stderr
