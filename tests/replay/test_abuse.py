"""Hostile traffic against a replayed training stack, bounded in count and time, on 127.0.0.1 only.

Each refusal must leave the front door serving /Read.action and every accepted post still listed.
"""
from __future__ import annotations

import http.client
import socket
import time

import pytest
import requests

from tests.replay.stack import ModuleStackPlacement, ReplayedStack, artifact_overrides

HTTP_PORT = ModuleStackPlacement.of_module(__name__).http_port
SLOW_CLIENT_LIMIT_SECONDS = 25  # nginx cuts a stalled request after ~10 s; give it room, stay bounded


@pytest.fixture(scope="module")
def stack(docker_client, base_image, standin_war, static_zip):
    replayed = ReplayedStack.for_module(__name__, {
        **artifact_overrides(standin_war, static_zip, base_image),
        "statsPassword": "abuse-stats-password", "appReplicas": "1",
        "postRatePerMinute": "6", "postBurst": "3",
    })
    replayed.down(purge=True)
    replayed.up()
    replayed.wait_until_serving()
    assert replayed.post("accepted-before-abuse").status_code == 302
    yield replayed
    replayed.down(purge=True)


@pytest.fixture(autouse=True)
def still_serving_afterwards(stack):
    yield
    # Whatever the test threw at it: the front door serves and the accepted post is still there.
    assert requests.get(stack.url + "Read.action", timeout=10).status_code == 200
    assert "accepted-before-abuse" in stack.titles_listed()


def raw_request(request_line: str, headers: str = "") -> tuple[int, bytes]:
    """Send a request byte for byte (no client-side path normalisation); return status and body."""
    connection = http.client.HTTPConnection("127.0.0.1", HTTP_PORT, timeout=10)
    connection.putrequest(*request_line.split(" ", 1), skip_accept_encoding=True)
    connection.endheaders()
    response = connection.getresponse()
    return response.status, response.read()


def test_oversized_body_gets_413(stack):
    answer = requests.post(stack.url + "Post.action", data={"title": "big", "body": "x" * 200_000}, timeout=10)
    assert answer.status_code == 413


def test_oversized_headers_get_400_or_431(stack):
    answer = requests.get(stack.url + "Read.action", headers={"X-Padding": "y" * 20_000}, timeout=10)
    assert answer.status_code in (400, 431), answer.status_code


def test_bad_methods_get_405(stack):
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"):
        answer = requests.request(method, stack.url + "Read.action", timeout=10)
        assert answer.status_code == 405, f"{method}: {answer.status_code}"


@pytest.mark.parametrize("path", [
    "/styles/../../etc/passwd",
    "/images/../../../etc/passwd",
    "/styles/..%2f..%2fetc/passwd",
    "/images/%2e%2e/%2e%2e/etc/passwd",
    "/styles/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
])
def test_path_tricks_never_leave_the_static_root(stack, path):
    status, body = raw_request(f"GET {path}")
    assert b"root:" not in body, f"{path} served a passwd file"
    assert status in (400, 403, 404), f"{path}: {status}"


def test_slow_client_is_cut_off(stack):
    with socket.create_connection(("127.0.0.1", HTTP_PORT), timeout=SLOW_CLIENT_LIMIT_SECONDS) as client:
        client.sendall(b"GET /Read.action HTTP/1.1\r\nHost: slow\r\n")  # never finishes its headers
        started = time.monotonic()
        try:
            answer = client.recv(4096)
        except socket.timeout:
            pytest.fail(f"still connected after {SLOW_CLIENT_LIMIT_SECONDS} s")
        waited = time.monotonic() - started
    assert answer == b"" or b"408" in answer.split(b"\r\n", 1)[0], answer[:100]
    assert waited < SLOW_CLIENT_LIMIT_SECONDS, f"cut off only after {waited:.1f} s"


def test_post_burst_is_rate_limited(stack):
    statuses = [stack.post(f"burst-{number}").status_code for number in range(12)]
    assert 429 in statuses, f"no 429 in a burst of 12 posts: {statuses}"
    assert set(statuses) <= {302, 429}, statuses
    listed = stack.titles_listed()
    accepted = [number for number, status in enumerate(statuses) if status == 302]
    assert all(f"burst-{number}" in listed for number in accepted), "an accepted post is missing"
