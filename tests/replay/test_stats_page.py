"""The front door's stats page and /metrics on a replayed stack: what an operator (or their Prometheus) reads."""
from __future__ import annotations

import re
import time

import requests

from tests.replay.conftest import STATS_PASSWORD

AUTH = ("stats", STATS_PASSWORD)


def metrics(stack) -> dict[str, float]:
    """/metrics as {'name{labels}': value}."""
    response = requests.get(stack.outputs["stats_url"] + "metrics", auth=AUTH, timeout=10)
    assert response.status_code == 200, response.status_code
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4"), response.headers
    samples = {}
    for line in response.text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def sample(samples: dict[str, float], pattern: str) -> float:
    return sum(value for name, value in samples.items() if re.fullmatch(pattern, name))


def eventually(probe, timeout: float = 15.0):
    """The request lines reach the stats files as they are answered; the scrape may still race them."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


def test_stats_page_and_metrics_refuse_a_wrong_password(replayed_training):
    for path in ("", "metrics"):
        url = replayed_training.outputs["stats_url"] + path
        assert requests.get(url, timeout=10).status_code == 401, f"/{path} without a password"
        assert requests.get(url, auth=("stats", "wrong-password"), timeout=10).status_code == 401, f"/{path}"
        assert requests.get(url, auth=AUTH, timeout=10).status_code == 200, f"/{path} with the password"


def test_a_refused_request_is_counted_by_reason(replayed_training):
    before = metrics(replayed_training)
    assert requests.request("DELETE", replayed_training.url + "Read.action", timeout=10).status_code == 405
    assert eventually(lambda: sample(metrics(replayed_training),
                                     r'companynews_shield_refused_total\{reason="method"\}')
                      == sample(before, r'companynews_shield_refused_total\{reason="method"\}') + 1), \
        "the 405 was not counted under reason method"
    assert sample(metrics(replayed_training), r'companynews_requests_total\{code="4xx"\}') \
        >= sample(before, r'companynews_requests_total\{code="4xx"\}') + 1, "the 405 is not among the 4xx answers"
    page = requests.get(replayed_training.outputs["stats_url"], auth=AUTH, timeout=10).text
    assert re.search(r"<td>method</td><td>\d+</td>", page), "the page does not list refusals by reason"


def test_cache_hits_are_counted(replayed_training):
    before = sample(metrics(replayed_training), r'companynews_cache_requests_total\{status="HIT"\}')
    hits = 0
    for _ in range(5):
        response = requests.get(replayed_training.url + "Read.action", timeout=10)
        hits += response.headers.get("X-Cache-Status") == "HIT"
    assert hits, "no cache hit in five quick reads"
    assert eventually(lambda: sample(metrics(replayed_training),
                                     r'companynews_cache_requests_total\{status="HIT"\}') >= before + hits)
    # A hit is an answer too: counted among the 2xx, not only as a cache status.
    samples = metrics(replayed_training)
    assert sample(samples, r'companynews_requests_total\{code="2xx"\}') >= \
        sample(samples, r'companynews_cache_requests_total\{status="HIT"\}')


def test_a_failover_shows_on_the_page_and_in_metrics(replayed_training):
    replayed_training.wait_until_serving()
    old_writer = replayed_training.writer()
    before = sample(metrics(replayed_training), r"companynews_writer_changes_total")
    old_writer.kill()
    try:
        replayed_training.wait_until_serving(timeout=60)
        new_writer = replayed_training.writer()
        assert eventually(lambda: sample(metrics(replayed_training), r"companynews_writer_changes_total") >= before + 1), \
            "the failover was not counted"
        new_address = new_writer.attrs["NetworkSettings"]["Networks"]
        new_ip = next(iter(new_address.values()))["IPAddress"]
        samples = metrics(replayed_training)
        assert sample(samples, rf'companynews_upstream_up\{{tier="app",server="{re.escape(new_ip)}:8080",state="writer"\}}') == 1
        old_ip = next(iter(old_writer.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
        assert sample(samples, rf'companynews_upstream_failures_total\{{tier="app",server="{re.escape(old_ip)}:8080"\}}') >= 1
        page = requests.get(replayed_training.outputs["stats_url"], auth=AUTH, timeout=10).text
        assert re.search(rf"<td>app</td><td>{re.escape(new_ip)}:8080</td><td>writer</td>", page), page[:2000]
        assert "Failovers: " in page and "Failovers: 0" not in page
        assert sample(samples, "companynews_data_free_bytes") > 0, "the writer's free space is missing"
    finally:
        old_writer.start()


def test_the_writers_status_files_are_not_reachable_through_the_front_door(replayed_training):
    # The front door reads them from the app (post gate, stats); a client must not.
    for path in ("_companynews/status", "_companynews/accepting-posts"):
        response = requests.get(replayed_training.url + path, timeout=10)
        assert response.status_code == 404 and "role=" not in response.text, (path, response.status_code)
