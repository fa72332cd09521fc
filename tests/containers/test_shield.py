"""The shield (docs/security.md) on real Docker: every probe in tests/shield_probes.py is refused by the front
door, and again by the app server's own filter when the door is skipped, and the stand-in app behind both
(which records what Struts would see, and evaluates redirect: as Struts 2.1.8 does) never receives one.
The app's own use keeps working through both layers.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import pytest
import requests

from components import constants
from tests import shield_probes
from tests.containers import published_url, wait_for_status
from tests.containers.test_proxy_image import (  # noqa: F401  (proxy_image is a fixture used below)
    APP_START_SECONDS,
    STATS_PASSWORD,
    TierNetwork,
    Proxy,
    proxy_image,
    static_files,
    wait_for,
)
from tests.shield_probes import PROBES, Probe

TIMEOUT = 10


@dataclass
class Shielded:
    front_door: Proxy
    app: object          # the app container, also published on 127.0.0.1
    app_url: str         # http://127.0.0.1:<port>/, straight to Jetty

    @property
    def door_port(self) -> int:
        return int(self.front_door.url.rsplit(":", 1)[1])

    @property
    def app_port(self) -> int:
        return int(self.app_url.rstrip("/").rsplit(":", 1)[1])

    def app_log(self) -> str:
        return self.app.logs().decode(errors="replace")


@pytest.fixture(scope="module")
def shielded(docker_client, proxy_image, static_image, app_image):  # noqa: F811
    network = TierNetwork(docker_client, proxy_image, static_image, app_image)
    try:
        app, app_server = network.app(publish=True)
        # Posts go quickly from one address here; the rate limit has its own tests.
        front_door = network.proxy([network.static()], [app_server], POST_RATE_PER_MINUTE="100000",
                                   POST_BURST="10000")
        wait_for(front_door, "/Read.action", seconds=APP_START_SECONDS)
        app_url = published_url(app, constants.APP_PORT)
        wait_for_status(app_url, 200)
        yield Shielded(front_door, app, app_url)
    finally:
        network.close()


def received_nothing_but_posts(shielded: Shielded, base_url: str) -> list[str]:
    """Sends a well-formed post (it is logged after every earlier request), waits for its line in the
    app's log, and returns the stand-in's lines of anything else it received."""
    before = shielded.app_log().count(shield_probes.RECEIVED)
    posted = requests.post(base_url.rstrip("/") + "/Post.action", data={"title": "sentinel", "body": "x"},
                           allow_redirects=False, timeout=TIMEOUT)
    assert posted.status_code == 302, f"a well-formed post answered {posted.status_code}"
    deadline = time.monotonic() + 5
    while shielded.app_log().count(shield_probes.RECEIVED) <= before and time.monotonic() < deadline:
        time.sleep(0.05)
    return shield_probes.unexpected_receipts(shielded.app_log())


@pytest.mark.parametrize("probe", PROBES, ids=str)
def test_probe_refused_at_front_door(shielded, probe: Probe):
    answer = shield_probes.send(shielded.door_port, probe)
    shield_probes.assert_refused(answer, (probe.door_status,), probe, "the front door")
    leaked = received_nothing_but_posts(shielded, shielded.front_door.url)
    assert not leaked, f"{probe} through the front door reached the app: {leaked}"


@pytest.mark.parametrize("probe", PROBES, ids=str)
def test_probe_refused_at_app_server(shielded, probe: Probe):
    answer = shield_probes.send(shielded.app_port, probe)
    shield_probes.assert_refused(answer, probe.app_statuses, probe, "the app server")
    leaked = received_nothing_but_posts(shielded, shielded.app_url)
    assert not leaked, f"{probe} sent straight to the app server reached the app: {leaked}"


def test_front_door_logs_and_counts_each_refusal_with_its_reason(shielded):
    marker = uuid.uuid4().hex
    query, path = f"/Read.action?{marker}", f"/{marker}.jsp"
    requests.get(shielded.front_door.url + query, timeout=TIMEOUT)
    requests.get(shielded.front_door.url + path, timeout=TIMEOUT)
    requests.delete(shielded.front_door.url + "/Read.action", headers={"User-Agent": marker}, timeout=TIMEOUT)
    requests.post(shielded.front_door.url + "/Post.action", data={"title": "t", marker: "x"},
                  headers={"User-Agent": marker}, timeout=TIMEOUT)

    def lines() -> list[str]:
        return [line for line in shielded.front_door.container.logs(stderr=False).decode().splitlines()
                if marker in line]

    deadline = time.monotonic() + 5
    while len(lines()) < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    logged = lines()
    assert any(f"GET {query} " in line and '" 400 ' in line and "shield=query" in line for line in logged), logged
    assert any(f"GET {path} " in line and '" 404 ' in line and "shield=path" in line for line in logged), logged
    assert any("DELETE " in line and '" 405 ' in line and "shield=method" in line for line in logged), logged
    assert any("POST /Post.action " in line and '" 400 ' in line and "shield=form" in line for line in logged), logged

    counts = requests.get(shielded.front_door.stats_url + "/shield", auth=("stats", STATS_PASSWORD), timeout=TIMEOUT)
    assert counts.status_code == 200, counts.status_code
    numbers = dict(line.split() for line in counts.text.splitlines())
    for reason in ("query", "path", "method", "form"):
        assert int(numbers[reason]) >= 1, f"no {reason} refusal counted: {counts.text}"
    assert requests.get(shielded.front_door.stats_url + "/shield", timeout=TIMEOUT).status_code == 401


def test_admitted_requests_log_no_shield_reason(shielded):
    marker = uuid.uuid4().hex
    requests.get(shielded.front_door.url + "/Read.action", headers={"User-Agent": marker}, timeout=TIMEOUT)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        logged = [line for line in shielded.front_door.container.logs(stderr=False).decode().splitlines()
                  if marker in line]
        if logged:
            break
        time.sleep(0.1)
    assert logged and logged[0].endswith(" shield="), logged


# --- the app's own use, through the door and straight to the app server ------------------------------

@pytest.fixture(params=["front door", "app server"])
def base_url(request, shielded) -> str:
    return shielded.front_door.url + "/" if request.param == "front door" else shielded.app_url


def test_pages_still_served(base_url):
    for path, text in (("", "<h1>Company News</h1>"), ("Read.action", "Post an article"),
                       ("Post.action", 'name="title"')):
        response = requests.get(base_url + path, timeout=TIMEOUT)
        assert response.status_code == 200 and text in response.text, f"/{path}: {response.status_code}"
        assert requests.head(base_url + path, timeout=TIMEOUT).status_code == 200, f"HEAD /{path}"


def test_unicode_and_long_posts_still_accepted(base_url):
    title = f"Grüße aus Zürich – 東京 {uuid.uuid4().hex[:8]}"
    body = ("Ünïcödé and a long body. " * 100)[:2000]
    posted = requests.post(base_url + "Post.action", data={"title": title, "body": body}, allow_redirects=False,
                           timeout=TIMEOUT)
    assert posted.status_code == 302 and posted.headers["Location"].endswith("/Read.action"), posted.status_code
    listed = requests.get(base_url + "Read.action", cookies={"cn_fresh": "1"}, timeout=TIMEOUT).text
    assert title in listed and body in listed, "the post is not listed as sent"


def test_get_with_form_fields_creates_nothing(shielded, base_url):
    title = f"posted-by-get-{uuid.uuid4().hex[:8]}"
    answer = requests.get(base_url + "Post.action", params={"title": title, "body": "x"}, allow_redirects=False,
                          timeout=TIMEOUT)
    assert answer.status_code == 400, answer.status_code
    listed = requests.get(shielded.app_url + "Read.action", timeout=TIMEOUT).text
    assert title not in listed, "a GET with title and body created an article"


def test_static_files_still_served(shielded, static_files):
    for relative, content in static_files.items():
        response = requests.get(f"{shielded.front_door.url}/{relative}", timeout=TIMEOUT)
        assert response.status_code == 200 and response.content == content, f"/{relative}"
