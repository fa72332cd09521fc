"""The training stack, replayed onto the real Docker engine, as a user of `make up` would meet it."""
from __future__ import annotations

import zipfile

import requests

from tests.replay.conftest import STATS_PASSWORD


def test_front_door_serves_index_and_articles(replayed_training):
    index = requests.get(replayed_training.url, timeout=10)
    assert index.status_code == 200 and "styles/company.css" in index.text, index.text[:300]
    articles = requests.get(replayed_training.url + "Read.action", timeout=10)
    assert articles.status_code == 200, articles.status_code


def test_static_bytes_equal_archive(replayed_training, static_zip):
    with zipfile.ZipFile(static_zip) as archive:
        for member in ("static/styles/company.css", "static/images/logo.png"):
            served = requests.get(replayed_training.url + member.removeprefix("static/"), timeout=10)
            assert served.status_code == 200, f"{member}: {served.status_code}"
            assert served.content == archive.read(member), f"{member}: bytes differ from the archive"


def test_only_the_front_door_is_reachable_from_the_host(replayed_training):
    published = {}
    for container in replayed_training.containers():
        ports = container.attrs["HostConfig"]["PortBindings"] or {}
        if ports:
            published[container.name] = ports
    assert list(published) == [f"companynews-{replayed_training.name}-proxy"], f"published ports: {published}"


def test_stats_page_needs_the_password(replayed_training):
    stats = replayed_training.outputs["stats_url"]
    assert requests.get(stats, timeout=10).status_code == 401
    assert requests.get(stats, auth=("stats", "wrong-password"), timeout=10).status_code == 401
    answered = requests.get(stats, auth=("stats", STATS_PASSWORD), timeout=10)
    assert answered.status_code == 200 and "Active connections" in answered.text, answered.text[:200]


def test_post_survives_restart_of_every_app_container(replayed_training):
    answer = replayed_training.post("survives-restart")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("Read.action"), answer.status_code
    for container in replayed_training.containers("app"):
        container.restart(timeout=30)
    replayed_training.wait_until_serving()
    assert "survives-restart" in replayed_training.titles_listed()


def test_post_survives_down_and_up(replayed_training):
    assert replayed_training.post("survives-down-up").status_code == 302
    replayed_training.down()
    assert replayed_training.containers() == [], "down left containers behind"
    replayed_training.up()
    replayed_training.wait_until_serving()
    assert "survives-down-up" in replayed_training.titles_listed()


def test_up_twice_leaves_one_environment(replayed_training):
    replayed_training.up()
    roles = sorted(c.labels["companynews.role"] for c in replayed_training.containers())
    assert roles == ["app", "app", "proxy", "static", "static"], roles


def test_down_leaves_no_container_and_keeps_data_unless_purged(replayed_training, docker_client):
    replayed_training.down()
    assert replayed_training.containers() == []
    own_volumes = {"label": f"companynews.stack={replayed_training.name}"}
    assert docker_client.volumes.list(filters=own_volumes), "down removed the data"
    replayed_training.down(purge=True)
    assert not docker_client.volumes.list(filters=own_volumes), "purge kept the data"
    replayed_training.up()  # leave it up for the module fixture's own teardown
