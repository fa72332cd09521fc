"""A full data disk is seen before it bites: on a replayed stack whose data volume is a 512 KiB tmpfs.

Measured on the real war (issue 14): when a journal write hits "No space left on device", Prevayler 2.3 logs
"All transaction processing is now blocked" and every later post hangs, while reads answer 200. The stand-in's
journal does the same (tests/fixtures/standin). The stack must refuse posts with a prompt 503 instead, and
its writer must turn unhealthy: before the disk is full (dataFreeFloorKib), or at the latest once blocked.
"""
from __future__ import annotations

import time

import pytest
import requests

from components import constants
from tests.replay.stack import ReplayedStack, artifact_overrides

STACK = "test-diskfull"
DATA_VOLUME_BYTES = 512 * 1024
FLOOR_KIB = 128
BODY = "x" * 2000
PROMPT_SECONDS = 2.0
# How long nginx may skip a writer after a failed attempt: fail_timeout=1s counted in whole seconds.
FAIL_TIMEOUT_SECONDS_AT_MOST = 2.0
BLOCKED_WORDS = "All transaction processing is now blocked"
UNHEALTHY_WITHIN_SECONDS = 40


@pytest.fixture(scope="module")
def stack(docker_client, base_image, standin_war, static_zip):
    replayed = ReplayedStack(STACK, {
        **artifact_overrides(standin_war, static_zip, base_image),
        "httpPort": "18291", "statsPort": "18691", "statsPassword": "diskfull-stats-password",
        "dockerSubnet": "172.30.91.0/24", "postRatePerMinute": "100000", "postBurst": "10000",
        "dataFreeFloorKib": str(FLOOR_KIB),
    })
    replayed.down(purge=True)
    # The replay reuses a volume of the stack's name: this small tmpfs one stands in for a full disk.
    docker_client.volumes.create(
        f"companynews-{STACK}-data", driver="local",
        driver_opts={"type": "tmpfs", "device": "tmpfs",
                     "o": f"size={DATA_VOLUME_BYTES},uid={constants.APP_UID},gid={constants.APP_GID},mode=0750"},
        labels={constants.LABEL_STACK: STACK})
    replayed.up()
    replayed.wait_until_serving()
    yield replayed
    replayed.down(purge=True)


def timed_post(stack: ReplayedStack, title: str) -> tuple[int, float, str]:
    started = time.monotonic()
    try:
        response = requests.post(stack.url + "Post.action", data={"title": title, "body": BODY},
                                 allow_redirects=False, timeout=30)
        status, text = response.status_code, response.text
    except requests.RequestException as error:
        status, text = 0, str(error)
    return status, time.monotonic() - started, text


def wait_for_health(container, wanted: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    status = ""
    while time.monotonic() < deadline:
        container.reload()
        status = container.attrs["State"].get("Health", {}).get("Status", "")
        if status == wanted:
            return
        time.sleep(1)
    raise AssertionError(f"{container.name} is {status!r}, not {wanted!r}, after {timeout} s")


def writer_status(container) -> dict[str, str]:
    output = container.exec_run(["cat", "/tmp/writer-status/status"]).output.decode()
    return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)


def test_free_space_below_the_floor_turns_posts_into_a_prompt_503(stack):
    writer = stack.writer()
    answers = []
    for number in range(400):
        # Paced below what fills the floor's margin between two health checks (every 5 s).
        status, seconds, text = timed_post(stack, f"fill-{number}")
        answers.append(status)
        if status != 302:
            break
        time.sleep(0.1)
    assert answers[-1] == 503, f"posts answered {sorted(set(answers))}, never 503, on a 512 KiB volume"
    assert "Posting is paused" in text, text[:300]
    assert seconds < PROMPT_SECONDS, f"the refused post took {seconds:.1f} s"
    assert answers.count(302) >= 20, f"only {answers.count(302)} posts fitted before the floor"
    status, seconds, _ = timed_post(stack, "after-the-floor")
    assert status == 503 and seconds < PROMPT_SECONDS, (status, seconds)
    assert requests.get(stack.url + "Read.action", timeout=10).status_code == 200, "reads must go on"
    wait_for_health(writer, "unhealthy", UNHEALTHY_WITHIN_SECONDS)
    recorded = writer_status(writer)
    assert int(recorded["data_free_kib"]) < FLOOR_KIB and recorded["accepting_posts"] == "no", recorded
    assert BLOCKED_WORDS not in writer.logs().decode(), "the floor should have stopped posts before the journal"
    print(f"\n{answers.count(302)} posts fitted; the next got 503 in {seconds:.2f} s; writer: {recorded}")


def test_blocked_journal_turns_posts_into_503_not_a_hang(stack):
    # A new writer with no floor. (A tmpfs volume starts empty again once no container mounts it.)
    stack.up(dataFreeFloorKib="0")
    stack.wait_until_serving()
    writer = stack.writer()
    # Docker counts no failure during the start period: a journal blocked before the first passing check would
    # leave the writer 'starting' instead of 'unhealthy'.
    wait_for_health(writer, "healthy", UNHEALTHY_WITHIN_SECONDS)
    answers: list[tuple[int, float]] = []
    for number in range(600):
        status, seconds, text = timed_post(stack, f"block-{number}")
        answers.append((status, seconds))
        if status != 302:
            break
    status, seconds = answers[-1]
    assert status == 503, f"posts answered {sorted(set(a for a, _ in answers))}, never 503"
    # The post that met the full disk hangs in the app; the front door gives up on it after 5 s.
    assert seconds < 8, f"the post that hit the full disk was answered after {seconds:.1f} s"
    assert BLOCKED_WORDS in writer.logs().decode(), "the stand-in's journal did not block as Prevayler does"
    # The timed-out post took the writer out of the upstream for nginx's fail_timeout (1 s, counted in whole
    # seconds, so up to 2 s): no writer answers meanwhile, so a post is held (postHoldSeconds, issue 13) until
    # the writer is back in the upstream, and then its shut gate answers with its own page at once.
    later = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        later.append(timed_post(stack, f"while-blocked-{len(later)}"))
        if "Posting is paused" in later[-1][2]:
            break
        time.sleep(0.5)
    assert all(s == 503 and t < PROMPT_SECONDS + FAIL_TIMEOUT_SECONDS_AT_MOST for s, t, _ in later), (
        [(s, round(t, 2)) for s, t, _ in later])
    assert "Posting is paused" in later[-1][2], later[-1][2][:300]
    assert requests.get(stack.url + "Read.action", timeout=10).status_code == 200, "reads must go on"
    wait_for_health(writer, "unhealthy", UNHEALTHY_WITHIN_SECONDS)
    assert writer_status(writer)["journal_blocked"] == "yes"
    print(f"\nthe post that hit the full disk: 503 after {seconds:.2f} s; later posts: "
          f"{[round(t, 2) for _, t, _ in later]} s")
