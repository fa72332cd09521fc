"""A training stack replayed onto the real Docker engine once per test module, torn down afterwards."""
from __future__ import annotations

import pytest

from tests.replay.stack import ReplayedStack, artifact_overrides

STATS_PASSWORD = "replay-stats-password"


@pytest.fixture(scope="module")
def replayed_training(docker_client, base_image, standin_war, static_zip):
    stack = ReplayedStack("training", {
        **artifact_overrides(standin_war, static_zip, base_image),
        "httpPort": "18080", "statsPort": "18404", "statsPassword": STATS_PASSWORD,
        # The tests post quickly from one address; the rate limit has its own test.
        "postRatePerMinute": "100000", "postBurst": "10000",
    })
    stack.down(purge=True)
    stack.up()
    yield stack
    stack.down(purge=True)
