"""The module's own replayed stack, brought up once per test module and torn down afterwards.

Each module gets its own stack (`test-<module>`: name, containers, labels, data volume, ports, subnet; see
tests/replay/stack.py), so no test touches a person's `training` stack and no two modules share anything.
"""
from __future__ import annotations

import pytest

from tests.replay.stack import ReplayedStack, artifact_overrides

STATS_PASSWORD = "replay-stats-password"


@pytest.fixture(scope="module")
def replayed_training(request, docker_client, base_image, standin_war, static_zip):
    """The training configuration (Pulumi.training.yaml) replayed as this module's own test stack."""
    stack = ReplayedStack.for_module(request.module.__name__, {
        **artifact_overrides(standin_war, static_zip, base_image),
        "statsPassword": STATS_PASSWORD,
        # The tests post quickly from one address; the rate limit has its own test.
        "postRatePerMinute": "100000", "postBurst": "10000",
    })
    # What an earlier, interrupted run of this module left (its state says what that is).
    stack.down(purge=True)
    stack.up()
    yield stack
    stack.down(purge=True)
