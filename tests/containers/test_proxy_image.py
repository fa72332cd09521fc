"""The front door image (docker/proxy) on real Docker: routing, caching, failover answers, limits, hardening.

The proxy runs in front of the real static and app images (the fixture static.zip, the stand-in war), all
on one user-defined test network with fixed addresses as in the stack. Only the proxies publish ports, on
127.0.0.1, and the tests talk to nothing else.
"""
from __future__ import annotations

import http.client
import ipaddress
import socket
import time
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import docker.errors
import docker.types
import pytest
import requests

from components import constants
from tests.containers import FAST_HEALTHCHECK, HARDENING

PROXY_DIR = Path(__file__).resolve().parents[2] / "docker" / "proxy"
NAME_PREFIX = "cn-test-proxy-"
# Subnets the test network may take, tried in turn: another run of these tests may hold the first.
SUBNET_CANDIDATES = [ipaddress.IPv4Network(f"172.30.{third}.0/24") for third in range(199, 191, -1)]
STATS_PASSWORD = "stats-password-for-tests-only"
# The smallest /tmp the Pulumi program gives the proxy: its cache and temp files must fit.
PROXY_HARDENING = {**HARDENING, "tmpfs": {"/tmp": "rw,nosuid,nodev,noexec,size=64m"}}
TIMEOUT = 10  # seconds, for every HTTP request a test sends
APP_START_SECONDS = 90  # the JVM and Jetty deploying the war, on a busy CI host
SHORT_HOLD_SECONDS = 2  # POST_HOLD_SECONDS where a test waits for the hold to run out
# POST_HOLD_SECONDS where a post must outwait a standby's takeover: the most the setting allows, since a
# busy CI host may start the JVM slowly; the post is answered as soon as the writer listens.
TAKEOVER_HOLD_SECONDS = 60


@pytest.fixture(scope="module")
def proxy_image(docker_client, base_image) -> str:
    tag = f"{NAME_PREFIX}image:latest"
    docker_client.images.build(path=str(PROXY_DIR), tag=tag, rm=True, forcerm=True, pull=False,
                               buildargs={"BASE_IMAGE": base_image, "PROXY_UID": str(constants.PROXY_UID)})
    return tag


@pytest.fixture(scope="module")
def static_files(static_zip) -> dict[str, bytes]:
    """Path under the site root (e.g. styles/company.css) -> the bytes the static tier must serve."""
    with zipfile.ZipFile(static_zip) as archive:
        files = {info.filename.removeprefix("static/"): archive.read(info)
                 for info in archive.infolist() if info.filename.startswith("static/") and not info.is_dir()}
    assert any(path.startswith("styles/") for path in files) and any(path.startswith("images/") for path in files)
    return files


# --- the test network and what runs on it ----------------------------------------------------------------

@dataclass
class Proxy:
    container: object
    url: str            # the front door, http://127.0.0.1:<port>
    stats_url: str      # the stats page, http://127.0.0.1:<port>


class TierNetwork:
    """Starts containers at fixed addresses on one network; removes every one of them, then the network."""

    def __init__(self, docker_client, proxy_image: str, static_image: str, app_image: str):
        self.client = docker_client
        self.proxy_image = proxy_image
        self.static_image = static_image
        self.app_image = app_image
        self.name = f"{NAME_PREFIX}{uuid.uuid4().hex[:8]}"
        self.network, self.subnet = self._create_network()
        self.containers: list = []
        self.volumes: list = []
        self._free_addresses = iter(list(self.subnet.hosts())[9:])  # .10 onwards; .1 is the gateway

    def _create_network(self):
        refusals = []
        for subnet in SUBNET_CANDIDATES:
            try:
                network = self.client.networks.create(
                    self.name, driver="bridge",
                    ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=str(subnet))]))
                return network, subnet
            except docker.errors.APIError as error:
                if "overlap" not in str(error).lower():
                    raise
                refusals.append(str(subnet))
        raise AssertionError(f"every test subnet is taken ({', '.join(refusals)}): remove stale "
                             f"{NAME_PREFIX}* networks with `docker network ls`")

    def close(self) -> None:
        for container in self.containers:
            container.remove(force=True, v=True)
        for volume in self.volumes:
            volume.remove(force=True)
        self.network.remove()

    def _run(self, image: str, role: str, **options):
        address = str(next(self._free_addresses))
        container = self.client.containers.run(
            image, detach=True, name=f"{self.name}-{role}-{address.rsplit('.', 1)[1]}", network=self.name,
            networking_config={self.name: self.client.api.create_endpoint_config(ipv4_address=address)},
            **options,
        )
        self.containers.append(container)
        return container, address

    def empty_app_address(self) -> str:
        """An app ip:port on this network where no container is, and none will be: it does not refuse, it
        stays silent (ARP), as the release slot not in use does."""
        return f"{next(self._free_addresses)}:{constants.APP_PORT}"

    def data_volume(self):
        volume = self.client.volumes.create(f"{self.name}-data-{len(self.volumes)}")
        self.volumes.append(volume)
        return volume

    def static(self) -> str:
        _, address = self._run(self.static_image, "static", healthcheck=FAST_HEALTHCHECK, **HARDENING)
        return f"{address}:{constants.STATIC_PORT}"

    def app(self, volume=None, publish: bool = False, environment: dict[str, str] | None = None):
        """An app replica on `volume` (a new one by default): the writer, or a standby if another holds it.
        `publish` also publishes its port on 127.0.0.1, for tests that skip the front door."""
        ports = {f"{constants.APP_PORT}/tcp": ("127.0.0.1", None)} if publish else {}
        container, address = self._run(
            self.app_image, "app", healthcheck=FAST_HEALTHCHECK,
            volumes={(volume or self.data_volume()).name: {"bind": constants.DATA_PATH, "mode": "rw"}},
            ports=ports, environment=environment or {}, **HARDENING)
        return container, f"{address}:{constants.APP_PORT}"

    def proxy(self, static_servers: list[str], app_servers: list[str], **environment: str) -> Proxy:
        env = {"STATIC_SERVERS": " ".join(static_servers), "APP_SERVERS": " ".join(app_servers),
               "STATS_PASSWORD": STATS_PASSWORD, **environment}
        container, _ = self._run(
            self.proxy_image, "proxy", environment=env,
            ports={f"{constants.PROXY_PORT}/tcp": ("127.0.0.1", None),
                   f"{constants.PROXY_STATS_PORT}/tcp": ("127.0.0.1", None)},
            **PROXY_HARDENING,
        )
        container.reload()
        ports = container.attrs["NetworkSettings"]["Ports"]
        proxy = Proxy(
            container,
            f"http://127.0.0.1:{ports[f'{constants.PROXY_PORT}/tcp'][0]['HostPort']}",
            f"http://127.0.0.1:{ports[f'{constants.PROXY_STATS_PORT}/tcp'][0]['HostPort']}",
        )
        wait_for(proxy, "/healthz")
        return proxy


def wait_for(proxy: Proxy, path: str, seconds: float = 30) -> requests.Response:
    """GET `path` through the proxy until it answers 200; fail with the last answer after `seconds`."""
    deadline = time.monotonic() + seconds
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            response = requests.get(proxy.url + path, timeout=2)
            if response.status_code == 200:
                return response
            last = f"HTTP {response.status_code}"
        except requests.RequestException as error:
            last = str(error)
        proxy.container.reload()
        if proxy.container.status == "exited":
            logs = proxy.container.logs().decode(errors="replace")
            pytest.fail(f"{proxy.container.name} exited while waiting for {path}:\n{logs}")
        time.sleep(0.2)
    pytest.fail(f"{proxy.container.name}: {path} did not answer 200 within {seconds} s (last: {last})")


@pytest.fixture(scope="module")
def test_network(docker_client, proxy_image, static_image, app_image) -> Iterator[TierNetwork]:
    network = TierNetwork(docker_client, proxy_image, static_image, app_image)
    try:
        yield network
    finally:
        network.close()


@dataclass
class Tiers:
    """The static replica and the app writer shared by the proxies that do not stop them."""
    static_server: str
    app_server: str
    app_volume: object
    front_door: Proxy   # every setting at its default

    def as_server_lists(self) -> tuple[list[str], list[str]]:
        return [self.static_server], [self.app_server]


@pytest.fixture(scope="module")
def tiers(test_network, static_files) -> Tiers:
    """Both tiers, answering: waits until they do through a front door with the default settings."""
    volume = test_network.data_volume()
    static_server = test_network.static()
    _, app_server = test_network.app(volume)
    front_door = test_network.proxy([static_server], [app_server])
    wait_for(front_door, "/Read.action", seconds=APP_START_SECONDS)
    wait_for(front_door, f"/{next(iter(static_files))}?ready")
    return Tiers(static_server, app_server, volume, front_door)


@pytest.fixture(scope="module")
def proxy(tiers) -> Proxy:
    """The front door with every setting at its default."""
    return tiers.front_door


def post(proxy: Proxy, title: str, session: requests.Session | None = None, **kwargs) -> requests.Response:
    sender = session or requests
    return sender.post(proxy.url + "/Post.action", data={"title": title, "body": "posted through the proxy"},
                       allow_redirects=False, timeout=TIMEOUT, **kwargs)


def raw_get(proxy: Proxy, path: str) -> tuple[int, bytes]:
    """A GET with the path exactly as written (requests would normalise the dots away)."""
    port = int(proxy.url.rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def wait_until(probe, seconds: float):
    """Call `probe` every 0.1 s until it returns something truthy; its last result after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        result = probe()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


def access_log(proxy: Proxy) -> str:
    return proxy.container.logs(stdout=True, stderr=False).decode(errors="replace")


def logged(proxy: Proxy, *needles: str) -> bool:
    """Whether every needle shows in the access log within a few seconds: nginx buffers the log for up to
    1 s (flush=1s in nginx.conf) and docker hands the lines on asynchronously."""
    return bool(wait_until(lambda: all(needle in access_log(proxy) for needle in needles), seconds=5))


# --- routing -------------------------------------------------------------------------------------------

def test_static_paths_reach_static_tier(proxy, static_files):
    for relative, content in static_files.items():
        response = requests.get(f"{proxy.url}/{relative}", timeout=TIMEOUT)
        assert response.status_code == 200, f"/{relative} answered {response.status_code}"
        assert response.content == content, f"/{relative} is not the static tier's file"


def test_app_paths_reach_app_tier(proxy, tiers):
    home = requests.get(proxy.url + "/", timeout=TIMEOUT)
    assert home.status_code == 200 and "<h1>Company News</h1>" in home.text, home.text[:300]
    news = requests.get(proxy.url + "/Read.action", timeout=TIMEOUT)
    assert news.status_code == 200 and "Post an article" in news.text, news.text[:300]
    assert logged(proxy, f"upstream={tiers.app_server}"), access_log(proxy)[-2000:]


def test_path_tricks_never_leave_static_root(proxy, static_files):
    tricks = [
        "/styles/../../etc/passwd",
        "/images/../../../../etc/passwd",
        "/styles/..%2f..%2fetc/passwd",
        "/styles/%2e%2e/%2e%2e/etc/passwd",
        "/styles/../../etc/nginx/nginx.conf",
        "/images/..%2f..%2f..%2fetc/nginx/nginx.conf",
        "/styles//../../etc/nginx/nginx.conf",
    ]
    for path in tricks:
        status, body = raw_get(proxy, path)
        assert b"root:x:0:0" not in body and b"worker_processes" not in body, (
            f"{path} escaped the static root (HTTP {status})")
    # Dots that stay inside the site are resolved, not refused.
    stylesheet = next(path for path in static_files if path.startswith("styles/"))
    status, body = raw_get(proxy, f"/images/../{stylesheet}")
    assert (status, body) == (200, static_files[stylesheet])


def test_standby_and_empty_app_addresses_are_skipped(test_network, tiers):
    """A standby (an app replica without the writer lock) refuses connections, and an address without a
    container (the release slot not in use) does not answer at all; neither may cost a reader a timeout."""
    _, standby = test_network.app(tiers.app_volume)
    empty = test_network.empty_app_address()
    front_door = test_network.proxy([tiers.static_server], [empty, standby, tiers.app_server])
    time.sleep(1)   # the balancer's first probes
    slowest = 0.0
    for number in range(10):
        started = time.monotonic()
        # cn_fresh: past the micro-cache, to the app tier every time.
        response = requests.get(f"{front_door.url}/Read.action", cookies={"cn_fresh": "1"}, timeout=TIMEOUT)
        slowest = max(slowest, time.monotonic() - started)
        assert response.status_code == 200, f"read {number} answered {response.status_code} with a standby"
        posted = post(front_door, f"while-standby-{number}")
        assert posted.status_code == 302, f"post {number} answered {posted.status_code} with a standby"
    print(f"\nslowest read past an empty address and a standby: {slowest * 1000:.0f} ms")
    assert slowest < 0.5, "an empty address or a refusing standby cost a read a connect timeout"
    assert logged(front_door, tiers.app_server), "the writer never answered"


def test_client_cannot_forge_forwarding_headers(proxy):
    """Jetty builds the redirect after a post from these headers when they reach it."""
    forged = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Port": "1", "X-Forwarded-Proto": "https",
              "X-Forwarded-Server": "evil.example", "Forwarded": "host=evil.example;proto=https"}
    posted = post(proxy, "forged-headers", headers=forged)
    assert posted.status_code == 302
    assert posted.headers["Location"] == f"{proxy.url}/Read.action", posted.headers["Location"]


# --- caching and failover ------------------------------------------------------------------------------

def test_cached_reads_carry_no_session_cookie(proxy):
    responses = []
    for _ in range(20):  # until a read is answered from the cache (the cache lasts 1 s)
        response = requests.get(proxy.url + "/", timeout=TIMEOUT)
        responses.append(response)
        if response.headers.get("X-Cache-Status") == "HIT":
            break
    assert responses[-1].headers.get("X-Cache-Status") == "HIT", "no read of / was served from the cache"
    for response in responses:
        assert "Set-Cookie" not in response.headers, f"a cacheable read set {response.headers['Set-Cookie']}"
    # The app does set a session on a post, and the writer path passes it through.
    assert "JSESSIONID=" in post(proxy, "cookie-check").headers.get("Set-Cookie", "")


def test_poster_sees_own_post_at_once(proxy):
    reader = requests.get(proxy.url + "/Read.action", timeout=TIMEOUT)
    assert reader.status_code == 200
    poster = requests.Session()
    title = f"fresh-{uuid.uuid4().hex[:8]}"
    posted = post(proxy, title, session=poster)
    assert posted.status_code == 302, posted.status_code
    assert "cn_fresh=1" in posted.headers.get("Set-Cookie", "") and "Max-Age=3" in posted.headers["Set-Cookie"]
    own_view = poster.get(proxy.url + "/Read.action", timeout=TIMEOUT)
    assert title in own_view.text, "the poster read a cached page without its own post"
    assert own_view.headers.get("X-Cache-Status") == "BYPASS"


def test_microcache_zero_turns_caching_off(test_network, tiers):
    front_door = test_network.proxy(*tiers.as_server_lists(), MICROCACHE_SECONDS="0")
    marker = uuid.uuid4().hex
    for _ in range(3):
        response = requests.get(f"{front_door.url}/Read.action", headers={"User-Agent": f"uncached-{marker}"},
                                timeout=TIMEOUT)
        assert response.status_code == 200 and "X-Cache-Status" not in response.headers
    def logged_reads() -> list[str] | None:  # nginx buffers its log for 1 s; docker hands lines on later
        lines = [line for line in access_log(front_door).splitlines() if marker in line]
        return lines if len(lines) >= 3 else None

    reads = wait_until(logged_reads, seconds=5) or []
    assert len(reads) == 3 and all(f"upstream={tiers.app_server}" in line for line in reads), (
        f"with MICROCACHE_SECONDS=0 every read must reach the app: {reads}")


def test_reads_served_stale_and_posts_get_failover_page_while_app_is_down(test_network, tiers):
    app_container, app_server = test_network.app()
    # A short hold: the post below waits that long for a writer that never comes (held posts have their tests).
    front_door = test_network.proxy([tiers.static_server], [app_server], POST_HOLD_SECONDS=str(SHORT_HOLD_SECONDS))
    before = wait_for(front_door, "/Read.action", seconds=APP_START_SECONDS)
    app_container.stop(timeout=2)

    # Until the micro-cache copy has expired (nginx counts whole seconds: up to 2 s) and the proxy
    # has to ask the app that is no longer there.
    answers = []
    deadline = time.monotonic() + 5
    while True:
        during = requests.get(front_door.url + "/Read.action", timeout=TIMEOUT)
        answers.append(f"{during.status_code} {during.headers.get('X-Cache-Status')}")
        if during.headers.get("X-Cache-Status") != "HIT" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert during.status_code == 200, f"a cached read answered {during.status_code} with the app down"
    assert during.text == before.text
    assert during.headers.get("X-Cache-Status") == "STALE", f"answers after the app stopped: {answers}"

    started = time.monotonic()
    posted = post(front_door, "during-failover")
    held = time.monotonic() - started
    assert posted.status_code == 503, f"a post with the app down answered {posted.status_code}"
    assert SHORT_HOLD_SECONDS <= held < SHORT_HOLD_SECONDS + 3, (
        f"a post with no writer got the 503 page after {held:.1f} s, not once its {SHORT_HOLD_SECONDS} s hold ran out")
    assert "failing over" in posted.text and "resend" in posted.text
    assert posted.headers["Content-Type"].startswith("text/html")
    assert posted.headers.get("Retry-After") == "5"

    never_cached = requests.get(front_door.url + "/Post.action", timeout=TIMEOUT)
    assert never_cached.status_code == 503 and "failing over" in never_cached.text


# --- held posts -----------------------------------------------------------------------------------------

def test_post_without_a_writer_is_held_and_delivered_once_the_standby_listens(test_network, tiers):
    """The writer crashes; a post that arrives before the standby listens waits at the door and is answered 302
    by the new writer, and is listed exactly once."""
    volume = test_network.data_volume()
    writer, writer_server = test_network.app(volume)
    assert wait_until(lambda: writer.exec_run(["cat", "/tmp/role"]).output.strip() == b"writer", APP_START_SECONDS)
    _, standby_server = test_network.app(volume)
    front_door = test_network.proxy([tiers.static_server], [writer_server, standby_server],
                                    POST_HOLD_SECONDS=str(TAKEOVER_HOLD_SECONDS))
    wait_for(front_door, "/Read.action", seconds=APP_START_SECONDS)
    assert post(front_door, "held-before-the-crash").status_code == 302
    title = f"held-{uuid.uuid4().hex[:8]}"
    writer.kill()  # SIGKILL: the JVM dies, the kernel frees the lock, the standby starts Jetty
    started = time.monotonic()
    posted = requests.post(front_door.url + "/Post.action", data={"title": title, "body": "held at the door"},
                           allow_redirects=False, timeout=TAKEOVER_HOLD_SECONDS + 10)
    held = time.monotonic() - started
    assert posted.status_code == 302, f"a post during the takeover answered {posted.status_code} after {held:.1f} s"
    assert held > 0.3, f"answered after {held:.2f} s: the standby cannot have listened yet, so it was never held"
    listed = requests.get(front_door.url + "/Read.action", cookies={"cn_fresh": "1"}, timeout=TIMEOUT).text
    assert listed.count(f">{title}<") == 1, f"{title} is listed {listed.count(f'>{title}<')} times, not once"
    print(f"\na post held through the takeover was answered 302 after {held:.2f} s")


def test_post_hold_zero_answers_the_failover_page_at_once(test_network, tiers):
    app_container, app_server = test_network.app()
    front_door = test_network.proxy([tiers.static_server], [app_server], POST_HOLD_SECONDS="0")
    wait_for(front_door, "/Read.action", seconds=APP_START_SECONDS)
    app_container.kill()
    started = time.monotonic()
    posted = post(front_door, "not-held")
    assert posted.status_code == 503 and "failing over" in posted.text, posted.status_code
    assert time.monotonic() - started < 1.5, "POST_HOLD_SECONDS=0 must answer at once"


def test_posts_paused_gate_is_answered_at_once_never_held(test_network, tiers):
    """A writer whose gate is shut (its disk below the floor) answered: the post is not held."""
    _, full_writer = test_network.app(environment={"DATA_FREE_FLOOR_KIB": "9999999999"})
    front_door = test_network.proxy([tiers.static_server], [full_writer], POST_HOLD_SECONDS=str(TAKEOVER_HOLD_SECONDS))
    wait_for(front_door, "/Read.action", seconds=APP_START_SECONDS)
    started = time.monotonic()
    posted = post(front_door, "while-paused")
    answered_in = time.monotonic() - started
    assert posted.status_code == 503 and "Posting is paused" in posted.text, (posted.status_code, posted.text[:200])
    assert answered_in < 1.5, f"a shut gate held the post {answered_in:.1f} s"


def post_to_the_only_app(test_network, tiers, address: str, title: str):
    """A front door whose one app server is `address` (port APP_PORT), the longest hold, and one post through it:
    the door, the answer and the seconds it took."""
    front_door = test_network.proxy([tiers.static_server], [f"{address}:{constants.APP_PORT}"],
                                    POST_HOLD_SECONDS=str(TAKEOVER_HOLD_SECONDS))
    started = time.monotonic()
    posted = post(front_door, title)
    return front_door, posted, time.monotonic() - started


def posts_received(app, title: str) -> int:
    """How many times a fake app logged a post of `title`. Read after the door answered, so no attempt of it is
    still on its way; the half second lets Docker hand the last lines on."""
    time.sleep(0.5)
    return app.logs(stdout=False, stderr=True).decode(errors="replace").count(f"title={title}")


# A stand-in for an app that takes a post and dies before answering: it answers the post gate, and for
# POST /Post.action reads the whole request, logs it, then closes the connection without a word (nginx's 444).
DYING_APP_CONF = """
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
pid /tmp/dying-app.pid;
error_log stderr warn;
events {}
http {
    client_body_temp_path /tmp/body;
    proxy_temp_path /tmp/proxy;
    fastcgi_temp_path /tmp/fastcgi;
    uwsgi_temp_path /tmp/uwsgi;
    scgi_temp_path /tmp/scgi;
    access_log /dev/stdout;
    server {
        listen 8080;
        location = /_companynews/accepting-posts { return 200 "yes"; }
        location = /Post.action {
            content_by_lua_block {
                ngx.req.read_body()
                ngx.log(ngx.WARN, "dying-app took a post: ", ngx.req.get_body_data())
                ngx.sleep(0.2)
                ngx.exit(444)
            }
        }
    }
}
"""


def test_post_that_reached_an_app_that_died_is_never_sent_again(test_network, tiers):
    # The proxy image has nginx with Lua; its root is read-only, so the configuration goes to its /tmp.
    dying, address = test_network._run(
        test_network.proxy_image, "dying-app", environment={"DYING_APP_CONF": DYING_APP_CONF},
        entrypoint=["bash", "-c", 'printf "%s" "$DYING_APP_CONF" >/tmp/dying-app.conf && '
                                  'exec nginx -c /tmp/dying-app.conf -g "daemon off;"'],
        **PROXY_HARDENING)
    title = f"once-{uuid.uuid4().hex[:8]}"
    front_door, posted, answered_in = post_to_the_only_app(test_network, tiers, address, title)
    assert posted.status_code == 503 and "failing over" in posted.text, posted.status_code
    assert answered_in < 3, f"a post that reached an app was held {answered_in:.1f} s"
    received = posts_received(dying, title)
    assert received == 1, f"the app received the post {received} times: one that reached an app is never resent"


# A stand-in for the race a held post's resend exists for: the writer answers the post gate "open", then stops
# listening before the post connects (it died), and a writer listens again a moment later. Perl (in every Debian
# base) answers each request with Connection: close, so the door keeps no connection that a post could reuse.
BLINKING_APP = r"""
use strict;
use IO::Socket::INET;
$| = 1;
sub listener { IO::Socket::INET->new(LocalPort => 8080, Listen => 16, ReuseAddr => 1) or die "listen: $!" }
my ($server, $gates) = (listener(), 0);
while (1) {
    my $client = $server->accept or next;
    my $head = "";
    while (my $line = <$client>) { $head .= $line; last if $line eq "\r\n"; }
    my ($length) = $head =~ /^Content-Length:\s*(\d+)/mi;
    my $body = "";
    read($client, $body, $length) if $length;
    # The first gate: stop listening before answering "open", so the post that follows finds nothing there.
    my $blink = $head =~ m{^GET /_companynews/accepting-posts} && $gates++ == 0;
    close $server if $blink;
    if ($head =~ m{^POST /Post\.action}) {
        print STDERR "took a post: $body\n";
        print $client "HTTP/1.1 302 Found\r\nLocation: /Read.action\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    } else {
        print $client "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nyes\n";
    }
    close $client;
    if ($blink) {
        select(undef, undef, undef, 1.5);
        $server = listener();
    }
}
"""


def test_post_refused_after_an_open_gate_is_delivered_again_exactly_once(test_network, tiers, base_image):
    blinking, address = test_network._run(base_image, "blinking-app", user=f"{constants.PROXY_UID}",
                                          command=["perl", "-e", BLINKING_APP], **HARDENING)
    title = f"resent-{uuid.uuid4().hex[:8]}"
    front_door, posted, answered_in = post_to_the_only_app(test_network, tiers, address, title)
    assert posted.status_code == 302, f"a post refused after an open gate answered {posted.status_code}"
    assert answered_in > 1, f"answered after {answered_in:.2f} s: the post cannot have met the refusal"
    received = posts_received(blinking, title)
    assert received == 1, f"the app received the post {received} times, not once"
    # Two proxy attempts for the one post: the refused one, then the delivery (" : " separates them).
    assert logged(front_door, f'"POST /Post.action HTTP/1.1" 302', f"upstream={address}:{constants.APP_PORT} : "), (
        access_log(front_door)[-1500:])


# --- limits --------------------------------------------------------------------------------------------

def test_other_methods_get_405(proxy):
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND"):
        response = requests.request(method, proxy.url + "/Read.action", timeout=TIMEOUT)
        assert response.status_code == 405, f"{method} answered {response.status_code}"
        assert response.headers.get("Allow") == "GET, HEAD, POST"
    assert requests.head(proxy.url + "/Read.action", timeout=TIMEOUT).status_code == 200


def test_oversized_body_gets_413(proxy):
    response = requests.post(proxy.url + "/Post.action", data={"title": "big", "body": "x" * 100_000},
                             allow_redirects=False, timeout=TIMEOUT)
    assert response.status_code == 413


def test_oversized_headers_and_uri_are_refused(proxy):
    headers = requests.get(proxy.url + "/Read.action", headers={"X-Padding": "a" * 10_000}, timeout=TIMEOUT)
    assert headers.status_code in (400, 431), headers.status_code
    uri = requests.get(proxy.url + "/Read.action?" + "a" * 10_000, timeout=TIMEOUT)
    assert uri.status_code == 414, uri.status_code


def test_slow_client_is_cut_off(proxy):
    port = int(proxy.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=20) as connection:
        connection.sendall(b"GET /Read.action HTTP/1.1\r\nHost: slow\r\n")  # the header never ends
        started = time.monotonic()
        answer = connection.recv(1024)
        waited = time.monotonic() - started
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:100]
    assert 8 < waited < 15, f"a client that stopped sending was held {waited:.1f} s"


def test_post_burst_gets_429(test_network, tiers):
    front_door = test_network.proxy(*tiers.as_server_lists(), POST_RATE_PER_MINUTE="1", POST_BURST="2")
    statuses = [post(front_door, f"burst-{number}").status_code for number in range(6)]
    assert statuses[:3] == [302, 302, 302], statuses
    assert set(statuses[3:]) == {429}, statuses
    assert requests.get(front_door.url + "/Read.action", timeout=TIMEOUT).status_code == 200, (
        "reads must not count against the post limit")


def test_post_from_outside_allow_list_gets_403(test_network, tiers):
    outsiders_only = test_network.proxy(*tiers.as_server_lists(), POST_ALLOW_CIDRS="192.0.2.0/24")
    assert post(outsiders_only, "not-allowed").status_code == 403
    assert requests.get(outsiders_only.url + "/Read.action", timeout=TIMEOUT).status_code == 200
    # Published ports reach the container from the network's gateway: this test posts from its subnet.
    allowed = test_network.proxy(*tiers.as_server_lists(),
                                 POST_ALLOW_CIDRS=f"192.0.2.0/24, {test_network.subnet}")
    assert post(allowed, "allowed").status_code == 302


# --- the stats page ------------------------------------------------------------------------------------

def test_stats_page_needs_password_and_is_on_8404(proxy):
    assert requests.get(proxy.stats_url + "/", timeout=TIMEOUT).status_code == 401
    wrong = requests.get(proxy.stats_url + "/", auth=("stats", "wrong"), timeout=TIMEOUT)
    assert wrong.status_code == 401
    right = requests.get(proxy.stats_url + "/", auth=("stats", STATS_PASSWORD), timeout=TIMEOUT)
    assert right.status_code == 200 and "Active connections" in right.text
    on_front_door = requests.get(proxy.url + "/", auth=("stats", STATS_PASSWORD), timeout=TIMEOUT)
    assert "Active connections" not in on_front_door.text, "the stats page must not be on the front door port"
    logs = proxy.container.logs().decode(errors="replace")
    assert STATS_PASSWORD not in logs, "the stats password appeared in the logs"


@pytest.mark.parametrize("environment, named", [
    ({"STATS_PASSWORD": None}, "STATS_PASSWORD"),
    ({"STATS_PASSWORD": ""}, "STATS_PASSWORD"),
    ({"APP_SERVERS": None}, "APP_SERVERS"),
    ({"STATIC_SERVERS": "static:8080"}, "STATIC_SERVERS"),
    ({"APP_SERVERS": "172.30.199.20:8080 172.30.199.300:8080"}, "APP_SERVERS"),
    ({"POST_RATE_PER_MINUTE": "0"}, "POST_RATE_PER_MINUTE"),
    ({"POST_BURST": "twenty"}, "POST_BURST"),
    ({"POST_ALLOW_CIDRS": "10.0.0.0/40"}, "POST_ALLOW_CIDRS"),
    ({"CLIENT_MAX_BODY": "64 kB"}, "CLIENT_MAX_BODY"),
    ({"MICROCACHE_SECONDS": "-1"}, "MICROCACHE_SECONDS"),
    ({"POST_HOLD_SECONDS": "61"}, "POST_HOLD_SECONDS"),
    ({"POST_HOLD_SECONDS": "ten"}, "POST_HOLD_SECONDS"),
    ({"LISTEN_ADDRESS": "localhost:8080"}, "LISTEN_ADDRESS"),
    ({"STATS_LISTEN_ADDRESS": "127.0.0.1:70000"}, "STATS_LISTEN_ADDRESS"),
    ({"STATS_LISTEN_ADDRESS": "8080"}, "STATS_LISTEN_ADDRESS"),
])
def test_refuses_to_start_with_missing_or_malformed_setting(docker_client, proxy_image, environment, named):
    env = {"STATIC_SERVERS": "172.30.199.10:8080", "APP_SERVERS": "172.30.199.20:8080",
           "STATS_PASSWORD": STATS_PASSWORD, **environment}
    container = docker_client.containers.run(
        proxy_image, detach=True, name=f"{NAME_PREFIX}refuse-{uuid.uuid4().hex[:8]}", network_mode="none",
        environment={key: value for key, value in env.items() if value is not None}, **HARDENING)
    try:
        exit_code = container.wait(timeout=30)["StatusCode"]
        logs = container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)
    assert exit_code != 0, f"started with {environment}"
    assert named in logs, f"the refusal does not name {named}: {logs}"
    assert "nginx" not in logs.split(named)[0], "nginx must not start before the settings are checked"
    assert STATS_PASSWORD not in logs


# --- what every answer carries, and the container itself --------------------------------------------------

def test_security_headers_on_every_response(proxy, static_files):
    answers = {
        "app page": requests.get(proxy.url + "/Read.action", timeout=TIMEOUT),
        "static file": requests.get(f"{proxy.url}/{next(iter(static_files))}", timeout=TIMEOUT),
        "not found": requests.get(proxy.url + "/images/missing.png", timeout=TIMEOUT),
        "method refused": requests.delete(proxy.url + "/", timeout=TIMEOUT),
        "healthz": requests.get(proxy.url + "/healthz", timeout=TIMEOUT),
        "stats refused": requests.get(proxy.stats_url + "/", timeout=TIMEOUT),
    }
    for what, response in answers.items():
        assert response.headers.get("X-Content-Type-Options") == "nosniff", what
        assert response.headers.get("X-Frame-Options") in ("DENY", "SAMEORIGIN"), what
        assert response.headers.get("Referrer-Policy"), what
        assert response.headers.get("Server") == "nginx", f"{what}: Server is {response.headers.get('Server')}"


def test_access_log_names_upstream_and_cache_status(proxy, tiers, static_files):
    requests.get(f"{proxy.url}/{next(iter(static_files))}", timeout=TIMEOUT)
    requests.get(proxy.url + "/Read.action", timeout=TIMEOUT)
    assert logged(proxy, f"upstream={tiers.app_server}", f"upstream={tiers.static_server}"), access_log(proxy)[-2000:]
    log = access_log(proxy)
    assert "cache=MISS" in log or "cache=HIT" in log


def test_runs_as_proxy_uid_with_read_only_root_and_no_capabilities(proxy):
    host_config = proxy.container.attrs["HostConfig"]
    assert host_config["ReadonlyRootfs"] and host_config["CapDrop"] == ["ALL"]
    status = proxy.container.exec_run(["cat", "/proc/1/status"]).output.decode()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    assert fields["Uid"].split()[0] == str(constants.PROXY_UID), fields["Uid"]
    assert int(fields["CapEff"].strip(), 16) == 0 and fields["NoNewPrivs"].strip() == "1"
    assert proxy.container.exec_run(["touch", "/etc/nginx/written"]).exit_code != 0, "the root is writable"
    listening = proxy.container.exec_run(["cat", "/proc/net/tcp"]).output.decode()
    assert f":{constants.PROXY_PORT:04X} " in listening and f":{constants.PROXY_STATS_PORT:04X} " in listening


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_on_the_host_network_listens_where_listen_addresses_say(docker_client, test_network, tiers):
    """proxyNetworkMode host: nginx binds the host's ports itself (no Docker port proxy), reaches the tiers
    through the host's route to their network, and the health check follows LISTEN_ADDRESS."""
    http_port, stats_port = free_loopback_port(), free_loopback_port()
    container = docker_client.containers.run(
        test_network.proxy_image, detach=True, name=f"{test_network.name}-proxy-host", network_mode="host",
        environment={"STATIC_SERVERS": tiers.static_server, "APP_SERVERS": tiers.app_server,
                     "STATS_PASSWORD": STATS_PASSWORD, "LISTEN_ADDRESS": f"127.0.0.1:{http_port}",
                     "STATS_LISTEN_ADDRESS": f"127.0.0.1:{stats_port}"},
        **PROXY_HARDENING)
    test_network.containers.append(container)  # removed with the test network
    on_host = Proxy(container, f"http://127.0.0.1:{http_port}", f"http://127.0.0.1:{stats_port}")
    wait_for(on_host, "/Read.action")
    assert requests.get(on_host.stats_url + "/", timeout=TIMEOUT).status_code == 401, "stats page not on its port"
    health = container.exec_run(["/usr/local/bin/healthcheck"])
    assert health.exit_code == 0, health.output.decode()


def test_healthcheck_passes_in_hardened_container(docker_client, proxy, proxy_image):
    healthcheck = docker_client.images.get(proxy_image).attrs["Config"]["Healthcheck"]
    assert healthcheck["Test"] == ["CMD", "/usr/local/bin/healthcheck"]
    result = proxy.container.exec_run(["/usr/local/bin/healthcheck"])
    assert result.exit_code == 0, result.output.decode()
