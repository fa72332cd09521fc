"""The app tier image (docker/app) on real Docker, running the stand-in war: the companyNews pages, cookie-only
sessions, journals that outlive the container, and a single writer per data volume with hot standbys."""
from __future__ import annotations

import http.client
import re
import time
import uuid
from urllib.parse import urlparse

import pytest
import requests

from components import constants
from tests.containers import (
    FAST_HEALTHCHECK,
    HARDENING,
    REQUEST_TIMEOUT,
    DockerResources,
    exec_output,
    get_or_none,
    health_status,
    process_uids,
    published_url,
    wait_for,
    wait_for_status,
)

ROLE_FILE = "/tmp/role"
FAILOVER_SECONDS = 10  # the longest a standby may take to serve after the writer dies


@pytest.fixture
def resources(docker_client):
    tracker = DockerResources(docker_client)
    yield tracker
    tracker.remove_all()


def run_app(resources: DockerResources, image: str, volume, purpose: str = "app"):
    """An app container on `volume`, hardened and health-checked as the Pulumi program runs it."""
    return resources.run(
        image,
        purpose,
        volumes={volume.name: {"bind": constants.DATA_PATH, "mode": "rw"}},
        healthcheck=FAST_HEALTHCHECK,
        **HARDENING,
    )


def role_of(container) -> str:
    result = container.exec_run(["cat", ROLE_FILE])
    return result.output.decode().strip() if result.exit_code == 0 else ""


def post(url: str, title: str, body: str = "posted by a container test") -> requests.Response:
    return requests.post(url + "Post.action", data={"title": title, "body": body},
                         allow_redirects=False, timeout=REQUEST_TIMEOUT)


def listed(url: str) -> str:
    response = requests.get(url + "Read.action", timeout=REQUEST_TIMEOUT)
    assert response.status_code == 200, f"Read.action answered {response.status_code}"
    return response.text


def fresh_title(label: str) -> str:
    return f"{label} {uuid.uuid4().hex[:8]}"


def listens_on_app_port(container) -> bool:
    """Whether any socket in the container listens on the app port (from /proc, IPv4 and IPv6)."""
    port = f"{constants.APP_PORT:04X}"
    # tcp6 is missing where IPv6 is off; cat still prints tcp.
    tables = container.exec_run(["cat", "/proc/net/tcp", "/proc/net/tcp6"]).output.decode()
    for line in tables.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[1].endswith(f":{port}") and fields[3] == "0A":  # 0A: LISTEN
            return True
    return False


@pytest.fixture(scope="module")
def app_server(docker_client, app_image):
    """One writer on its own volume, for the tests that only read pages; yields (container, base URL)."""
    resources = DockerResources(docker_client)
    try:
        container = run_app(resources, app_image, resources.volume("app-data"))
        url = published_url(container, constants.APP_PORT)
        wait_for_status(url, 200, timeout=60)
        yield container, url
    finally:
        resources.remove_all()


# --- the pages --------------------------------------------------------------------------------------------


def test_index_answers_200_with_session_cookie(app_server):
    _container, url = app_server
    response = requests.get(url, timeout=REQUEST_TIMEOUT)
    assert response.status_code == 200
    assert "JSESSIONID" in response.cookies, f"no JSESSIONID cookie; Set-Cookie: {response.headers.get('Set-Cookie')}"
    for link in ("styles/company.css", "images/logo.png", "Read.action", "Post.action"):
        assert f'"{link}"' in response.text, f"the index page does not link {link}"


def test_read_action_lists_articles(app_server):
    _container, url = app_server
    response = requests.get(url + "Read.action", timeout=REQUEST_TIMEOUT)
    assert response.status_code == 200
    assert "<h1>Company News</h1>" in response.text


def test_post_action_shows_a_form(app_server):
    _container, url = app_server
    response = requests.get(url + "Post.action", timeout=REQUEST_TIMEOUT)
    assert response.status_code == 200
    assert re.search(r'<form method="post" action="Post\.action"', response.text), response.text
    assert 'name="title"' in response.text and 'name="body"' in response.text


def test_post_redirects_to_read_and_lists_the_title_escaped(app_server):
    _container, url = app_server
    title = fresh_title("<b>Quarterly & results</b>")
    response = post(url, title)
    assert response.status_code == 302, f"POST /Post.action answered {response.status_code}"
    assert urlparse(response.headers["Location"]).path == "/Read.action", response.headers["Location"]
    page = listed(url)
    escaped = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert escaped in page, f"{escaped!r} is not listed"
    assert title not in page, "the title is listed without HTML escaping"


def test_pages_never_carry_jsessionid_even_without_a_cookie(app_server):
    _container, url = app_server
    for path in ("", "Read.action", "Post.action"):
        response = requests.get(url + path, timeout=REQUEST_TIMEOUT)  # a new client each time: no cookie
        assert response.status_code == 200
        assert ";jsessionid=" not in response.text.lower(), f"/{path} rewrites its links with the session id"
    response = post(url, fresh_title("cookieless"))
    assert ";jsessionid=" not in response.headers["Location"].lower(), response.headers["Location"]


def test_no_server_version_in_answers(app_server):
    _container, url = app_server
    response = requests.get(url, timeout=REQUEST_TIMEOUT)
    assert "Server" not in response.headers, f"Jetty names itself: {response.headers['Server']}"


# --- the process and its hardening ------------------------------------------------------------------------


def test_runs_as_app_uid_with_the_jvm_as_pid_1(app_server):
    container, _url = app_server
    assert process_uids(container, 1) == [constants.APP_UID] * 4, "PID 1 runs as"
    assert exec_output(container, ["cat", "/proc/1/comm"]).strip() == "java", "PID 1 is not the JVM"


def test_writer_jvm_holds_the_writer_lock(app_server):
    container, _url = app_server
    lock = f"{constants.DATA_PATH}/{constants.WRITER_LOCK_FILE}"
    descriptors = exec_output(container, ["ls", "-l", "/proc/1/fd"])
    assert lock in descriptors, f"the JVM has no descriptor on {lock}:\n{descriptors}"
    assert role_of(container) == "writer"


def test_serves_with_read_only_root_no_capabilities_and_tmpfs(app_server):
    container, url = app_server
    host_config = container.attrs["HostConfig"]
    assert host_config["ReadonlyRootfs"] is True
    assert host_config["CapDrop"] == ["ALL"]
    assert "no-new-privileges:true" in host_config["SecurityOpt"]
    assert "/tmp" in host_config["Tmpfs"]
    assert container.exec_run(["touch", "/opt/companynews/written"]).exit_code != 0, "the root is writable"
    assert post(url, fresh_title("read-only root")).status_code == 302, "the data folder is not writable"


def test_healthcheck_reports_the_writer_healthy(app_server, docker_client, app_image):
    container, _url = app_server
    healthcheck = docker_client.images.get(app_image).attrs["Config"]["Healthcheck"]
    assert healthcheck["Test"] == ["CMD", "/usr/local/bin/healthcheck"]
    wait_for(lambda: health_status(container) == "healthy", 30, f"{container.name} healthy")


# --- persistence and the single writer --------------------------------------------------------------------


def test_post_survives_container_restart(resources, app_image):
    volume = resources.volume("restart-data")
    container = run_app(resources, app_image, volume)
    url = published_url(container, constants.APP_PORT)
    wait_for_status(url, 200)
    title = fresh_title("survives restart")
    assert post(url, title).status_code == 302

    container.restart(timeout=10)
    url = published_url(container, constants.APP_PORT)  # the host port may change on restart
    wait_for_status(url, 200)
    assert title in listed(url), "the post is gone after docker restart"

    container.remove(force=True)
    successor = run_app(resources, app_image, volume, "app-successor")
    url = published_url(successor, constants.APP_PORT)
    wait_for_status(url, 200)
    assert title in listed(url), "a new container on the same volume does not list the post"


def test_two_containers_on_one_volume_elect_one_writer(resources, app_image):
    volume = resources.volume("shared-data")
    first = run_app(resources, app_image, volume, "app-first")
    wait_for_status(published_url(first, constants.APP_PORT), 200)
    second = run_app(resources, app_image, volume, "app-second")
    wait_for(lambda: role_of(second) == "standby", 30, f"{second.name} standby")

    assert role_of(first) == "writer"
    assert get_or_none(published_url(second, constants.APP_PORT)) is None, "the standby answers HTTP"
    assert not listens_on_app_port(second), f"the standby listens on {constants.APP_PORT}"
    assert second.exec_run(["/usr/local/bin/healthcheck"]).exit_code == 0, "a standby must be healthy"
    for container in (first, second):
        wait_for(lambda: health_status(container) == "healthy", 30, f"{container.name} healthy")


def test_post_survives_writer_kill(resources, app_image):
    volume = resources.volume("failover-data")
    writer = run_app(resources, app_image, volume, "app-writer")
    writer_url = published_url(writer, constants.APP_PORT)
    wait_for_status(writer_url, 200)
    standby = run_app(resources, app_image, volume, "app-standby")
    standby_url = published_url(standby, constants.APP_PORT)
    wait_for(lambda: role_of(standby) == "standby", 30, f"{standby.name} standby")

    titles = [fresh_title(f"before failover {n}") for n in range(3)]
    for title in titles:
        assert post(writer_url, title).status_code == 302

    writer.kill()
    killed_at = time.monotonic()
    wait_for_status(standby_url, 200, timeout=FAILOVER_SECONDS)
    took = time.monotonic() - killed_at
    assert role_of(standby) == "writer"
    page = listed(standby_url)
    missing = [title for title in titles if title not in page]
    assert not missing, f"the new writer lost {missing} ({took:.1f} s after the kill)"
    print(f"standby served {took:.2f} s after docker kill of the writer")


def test_standby_stops_promptly_on_sigterm(resources, app_image):
    volume = resources.volume("stop-data")
    writer = run_app(resources, app_image, volume, "app-writer")
    wait_for_status(published_url(writer, constants.APP_PORT), 200)
    standby = run_app(resources, app_image, volume, "app-standby")
    wait_for(lambda: role_of(standby) == "standby", 30, f"{standby.name} standby")

    started = time.monotonic()
    standby.stop(timeout=10)
    took = time.monotonic() - started
    standby.reload()
    assert took < 5, f"docker stop of a standby took {took:.1f} s: SIGTERM was ignored until SIGKILL"
    assert standby.attrs["State"]["ExitCode"] == 143, standby.attrs["State"]
    assert role_of(writer) == "writer", "stopping the standby disturbed the writer"


def test_writer_whose_war_cannot_start_exits_and_frees_the_lock(resources, app_image, docker_client):
    volume = resources.volume("broken-data")
    # A regular file where the war keeps its journal folder: the war's start-up fails, as it would on
    # a corrupt or unwritable data folder. Written by root, after the volume took the image's owner.
    resources.run(app_image, "prepare", publish=None, entrypoint=["true"],
                  volumes={volume.name: {"bind": constants.DATA_PATH, "mode": "rw"}}).wait(timeout=30)
    resources.run(app_image, "break", publish=None, user="0", entrypoint=["touch", f"{constants.DATA_PATH}/files*"],
                  volumes={volume.name: {"bind": constants.DATA_PATH, "mode": "rw"}}).wait(timeout=30)

    broken = run_app(resources, app_image, volume, "app-broken")
    standby = run_app(resources, app_image, volume, "app-standby")

    def exited_state() -> dict | None:
        broken.reload()
        return broken.attrs["State"] if broken.status == "exited" else None

    state = wait_for(exited_state, 60, f"{broken.name} exiting")
    assert state["ExitCode"] != 0, f"a writer whose war failed to start exited {state['ExitCode']}"
    assert b"writer: lock acquired" in broken.logs(), "it never took the lock, so this proves nothing"
    wait_for(lambda: b"writer: lock acquired" in standby.logs(), 30, f"{standby.name} taking the lock")


def test_class_data_sharing_archive_matches_the_jvm(resources, app_image):
    # -Xshare:on makes the JVM refuse to start when the build-time archive does not fit its class path
    # or options; by default it would silently start without it, a second slower on every failover.
    container = resources.run(app_image, "app-cds", environment={"JAVA_OPTS": "-Xshare:on"},
                              volumes={resources.volume("cds-data").name: {"bind": constants.DATA_PATH, "mode": "rw"}},
                              **HARDENING)
    wait_for_status(published_url(container, constants.APP_PORT), 200, timeout=60)


# --- sessions and timeouts (docs/security.md, the shield) ------------------------------------------------

# The ALB's idle timeout (AWS's default, which production sets explicitly), and a margin for a busy host.
LOAD_BALANCER_IDLE_SECONDS = 60
IDLE_MARGIN_SECONDS = 3


def test_sessions_are_not_kept_between_requests(app_server):
    """A cookieless flood opened one 30-minute session per request; now a session ends with its request,
    so a client that sends its JSESSIONID back is given a new one, and nothing piles up in the heap."""
    _container, url = app_server
    first = requests.get(url, timeout=REQUEST_TIMEOUT)
    session_id = first.cookies.get("JSESSIONID")
    assert session_id, f"no session opened: {first.headers.get('Set-Cookie')}"
    again = requests.get(url, cookies={"JSESSIONID": session_id}, timeout=REQUEST_TIMEOUT)
    assert again.status_code == 200
    assert again.cookies.get("JSESSIONID") not in (None, session_id), (
        f"Jetty kept session {session_id} after its request: Set-Cookie {again.headers.get('Set-Cookie')}")


def test_idle_connection_outlives_the_load_balancers_timeout(app_server):
    """Jetty must not close a kept-alive connection that the ALB (60 s) or the front door (20 s) may still
    reuse: the second request on a connection idle for longer than the ALB's timeout is answered."""
    _container, url = app_server
    parsed = urlparse(url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=REQUEST_TIMEOUT)
    try:
        connection.request("GET", "/")
        first = connection.getresponse()
        first.read()
        assert first.status == 200 and not first.will_close, "the first answer did not keep the connection"
        time.sleep(LOAD_BALANCER_IDLE_SECONDS + IDLE_MARGIN_SECONDS)
        try:
            connection.request("GET", "/")
            second = connection.getresponse()
            second.read()
        except (ConnectionError, http.client.HTTPException) as error:
            pytest.fail(f"Jetty closed a connection idle for {LOAD_BALANCER_IDLE_SECONDS + IDLE_MARGIN_SECONDS} s "
                        f"({error!r}): a load balancer reusing it would answer 502")
        assert second.status == 200
    finally:
        connection.close()
