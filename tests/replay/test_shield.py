"""The shield on the replayed training stack (docs/security.md): every probe of tests/shield_probes.py is
refused at the front door a user's `make up` publishes, counted on its stats page, and never reaches the
writer; the app's own use still works. (The app server's own refusals, door skipped, are proven in
tests/containers/test_shield.py, where the app container publishes its port.)"""
from __future__ import annotations

import time
import uuid
from urllib.parse import urlparse

import pytest
import requests

from tests import shield_probes
from tests.replay.conftest import STATS_PASSWORD
from tests.shield_probes import PROBES, Probe


def door_port(stack) -> int:
    return urlparse(stack.url).port


def log_of(container) -> str:
    return container.logs().decode(errors="replace")


def refusal_counts(stack) -> dict[str, int]:
    answer = requests.get(stack.outputs["stats_url"].rstrip("/") + "/shield", auth=("stats", STATS_PASSWORD),
                          timeout=10)
    assert answer.status_code == 200, f"the stats page's /shield answered {answer.status_code}"
    return {reason: int(count) for reason, count in (line.split() for line in answer.text.splitlines())}


@pytest.mark.parametrize("probe", PROBES, ids=str)
def test_probe_refused_at_the_front_door_and_never_reaches_the_writer(replayed_training, probe: Probe):
    counted_before = refusal_counts(replayed_training)["total"]
    answer = shield_probes.send(door_port(replayed_training), probe)
    shield_probes.assert_refused(answer, (probe.door_status,), probe, "the front door")
    expected_count = counted_before + (1 if probe.counted_by_door else 0)
    assert refusal_counts(replayed_training)["total"] == expected_count, "the refusal was not counted"
    # A well-formed post is logged after anything the probe could have caused; wait for it.
    writer = replayed_training.writer()
    receipts = log_of(writer).count(shield_probes.RECEIVED)
    assert replayed_training.post(f"sentinel-{uuid.uuid4().hex[:8]}").status_code == 302
    deadline = time.monotonic() + 5
    while log_of(writer).count(shield_probes.RECEIVED) <= receipts and time.monotonic() < deadline:
        time.sleep(0.05)
    leaked = shield_probes.unexpected_receipts(log_of(writer))
    assert not leaked, f"{probe} reached the writer: {leaked}"


def test_get_with_title_and_body_creates_nothing(replayed_training):
    title = f"posted-by-get-{uuid.uuid4().hex[:8]}"
    answer = requests.get(replayed_training.url + "Post.action", params={"title": title, "body": "x"},
                          allow_redirects=False, timeout=10)
    assert answer.status_code == 400, answer.status_code
    assert title not in replayed_training.titles_listed()


def test_unicode_and_long_posts_are_listed(replayed_training):
    title = f"Grüße – 東京 {uuid.uuid4().hex[:8]}"
    body = ("Ünïcödé, and a body of two thousand characters. " * 50)[:2000]
    posted = requests.post(replayed_training.url + "Post.action", data={"title": title, "body": body},
                           allow_redirects=False, timeout=10)
    assert posted.status_code == 302, posted.status_code
    listed = replayed_training.titles_listed()
    assert title in listed and body in listed


def test_refusals_are_logged_with_their_reason(replayed_training):
    marker = uuid.uuid4().hex
    requests.get(replayed_training.url + f"Read.action?{marker}", timeout=10)
    proxy = replayed_training.containers("proxy")[0]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [line for line in proxy.logs(stderr=False).decode().splitlines() if marker in line]
        if lines:
            break
        time.sleep(0.1)
    assert lines and '" 400 ' in lines[0] and lines[0].endswith("shield=query"), lines
