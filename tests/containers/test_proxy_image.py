"""The front door image (docker/proxy) on real Docker: routing, caching, failover answers, limits, hardening.

Every container runs on one user-defined test network with fixed addresses, as in the stack; only the
proxies publish ports, on 127.0.0.1, and the tests talk to nothing else.
"""
from __future__ import annotations

import http.client
import ipaddress
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
import requests

from components import constants

PROXY_DIR = Path(__file__).resolve().parents[2] / "docker" / "proxy"
NAME_PREFIX = "cn-test-proxy-"
SUBNET = ipaddress.IPv4Network("172.30.199.0/24")
STATS_PASSWORD = "stats-password-for-tests-only"
HARDENING = dict(
    read_only=True,
    tmpfs={"/tmp": "rw,nosuid,nodev,noexec,size=64m"},
    cap_drop=["ALL"],
    security_opt=["no-new-privileges:true"],
)
TIMEOUT = 10  # seconds, for every HTTP request a test sends

# The stand-in tiers' files; the static tests compare the bytes the proxy returns with these.
STATIC_FILES = {
    "styles/site.css": b"body { font-family: serif; }\n",
    "images/logo.png": bytes(range(256)) * 64,
}
SECRET_OUTSIDE_STATIC_ROOT = "standin-secret-outside-the-static-root"


# --- stand-in tiers -------------------------------------------------------------------------------------
# A small nginx for the static tier and a small Python app with the companyNews pages the front door cares
# about (GET /, /Read.action, /Post.action; POST /Post.action -> 302; a session cookie on every answer, as a
# JSP page sets one). They keep these tests independent of the app and static images.

STANDIN_DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update \\
    && apt-get install -y --no-install-recommends nginx python3 \\
    && apt-get clean \\
    && rm -rf /var/lib/apt/lists/*
COPY static-nginx.conf /etc/nginx/static-nginx.conf
COPY site/ /srv/static/
COPY secret.txt /srv/secret.txt
COPY app.py /srv/app.py
"""

STANDIN_STATIC_NGINX_CONF = """\
daemon off;
worker_processes 1;
pid /tmp/nginx.pid;
error_log stderr warn;
events {}
http {
    include /etc/nginx/mime.types;
    access_log off;
    client_body_temp_path /tmp/client_body;
    proxy_temp_path /tmp/proxy_temp;
    fastcgi_temp_path /tmp/fastcgi_temp;
    uwsgi_temp_path /tmp/uwsgi_temp;
    scgi_temp_path /tmp/scgi_temp;
    server {
        listen 8080;
        root /srv/static;
        location / { try_files $uri =404; }
    }
}
"""

STANDIN_APP = '''\
"""Stand-in for the companyNews app: its pages, a counter of rendered reads, posts kept in memory."""
import html
import itertools
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

posts = []
posts_lock = threading.Lock()
renders = itertools.count(1)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_page(self, status, text, extra=()):
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Set-Cookie", f"JSESSIONID={uuid.uuid4().hex}; Path=/; HttpOnly")
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        path = urlsplit(self.path).path
        if path == "/":
            self.send_page(200, "<h1>companynews app stand-in</h1>")
        elif path == "/Read.action":
            with posts_lock:
                items = "".join(f"<li>{html.escape(title)}</li>" for title in posts)
            self.send_page(200, f"<h1>news</h1><p>render {next(renders)}</p><ul>{items}</ul>")
        elif path == "/headers":
            lines = "".join(f"{name}: {value}\\n" for name, value in self.headers.items())
            self.send_page(200, html.escape(lines))
        elif path == "/Post.action":
            self.send_page(200, "<form method=post><input name=title><textarea name=body></textarea></form>")
        else:
            self.send_page(404, "<h1>not found</h1>")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode())
        if urlsplit(self.path).path != "/Post.action":
            self.send_page(404, "<h1>not found</h1>")
            return
        with posts_lock:
            posts.append(form.get("title", [""])[0])
        self.send_page(302, "", [("Location", "/Read.action")])


ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
'''


@pytest.fixture(scope="module")
def proxy_image(docker_client, base_image) -> str:
    tag = f"{NAME_PREFIX}image:latest"
    docker_client.images.build(path=str(PROXY_DIR), tag=tag, rm=True, forcerm=True,
                               buildargs={"BASE_IMAGE": base_image,
                                          "PROXY_UID": str(constants.PROXY_UID)})
    return tag


@pytest.fixture(scope="module")
def standin_image(docker_client, base_image, tmp_path_factory) -> str:
    context = tmp_path_factory.mktemp("proxy-standins")
    (context / "Dockerfile").write_text(STANDIN_DOCKERFILE)
    (context / "static-nginx.conf").write_text(STANDIN_STATIC_NGINX_CONF)
    (context / "app.py").write_text(STANDIN_APP)
    (context / "secret.txt").write_text(SECRET_OUTSIDE_STATIC_ROOT)
    for relative, content in STATIC_FILES.items():
        (context / "site" / relative).parent.mkdir(parents=True, exist_ok=True)
        (context / "site" / relative).write_bytes(content)
    tag = f"{NAME_PREFIX}standins:latest"
    docker_client.images.build(path=str(context), tag=tag, rm=True, forcerm=True,
                               buildargs={"BASE_IMAGE": base_image})
    return tag


# --- the test network and what runs on it ----------------------------------------------------------------

@dataclass
class Proxy:
    container: object
    url: str            # the front door, http://127.0.0.1:<port>
    stats_url: str      # the stats page, http://127.0.0.1:<port>


class TierNetwork:
    """Starts containers at fixed addresses on one network; removes every one of them, then the network."""

    def __init__(self, docker_client, proxy_image: str, standin_image: str):
        import docker.types

        self.client = docker_client
        self.proxy_image = proxy_image
        self.standin_image = standin_image
        self.name = f"{NAME_PREFIX}{uuid.uuid4().hex[:8]}"
        self.network = docker_client.networks.create(
            self.name, driver="bridge",
            ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=str(SUBNET))]),
        )
        self.containers: list = []
        self._free_addresses = iter(list(SUBNET.hosts())[9:])  # .10 onwards; .1 is the gateway

    def close(self) -> None:
        for container in self.containers:
            container.remove(force=True)
        self.network.remove()

    def _run(self, image: str, role: str, command=None, **options):
        address = str(next(self._free_addresses))
        container = self.client.containers.run(
            image, command, detach=True, name=f"{self.name}-{role}-{address.rsplit('.', 1)[1]}",
            network=self.name,
            networking_config={self.name: self.client.api.create_endpoint_config(ipv4_address=address)},
            **options,
        )
        self.containers.append(container)
        return container, address

    def static(self) -> str:
        _, address = self._run(self.standin_image, "static", ["nginx", "-c", "/etc/nginx/static-nginx.conf"],
                               user=f"{constants.STATIC_UID}:{constants.STATIC_UID}", **HARDENING)
        return f"{address}:{constants.STATIC_PORT}"

    def app(self):
        container, address = self._run(self.standin_image, "app", ["python3", "-u", "/srv/app.py"],
                                       user=f"{constants.APP_UID}:{constants.APP_UID}", **HARDENING)
        return container, f"{address}:{constants.APP_PORT}"

    def standby(self) -> str:
        """An app replica without the writer lock: running, but nothing listens on the app port."""
        _, address = self._run(self.standin_image, "standby", ["sleep", "infinity"],
                               user=f"{constants.APP_UID}:{constants.APP_UID}", **HARDENING)
        return f"{address}:{constants.APP_PORT}"

    def proxy(self, static_servers: list[str], app_servers: list[str], **environment: str) -> Proxy:
        env = {"STATIC_SERVERS": " ".join(static_servers), "APP_SERVERS": " ".join(app_servers),
               "STATS_PASSWORD": STATS_PASSWORD, **environment}
        container, _ = self._run(
            self.proxy_image, "proxy", environment=env,
            ports={f"{constants.PROXY_PORT}/tcp": ("127.0.0.1", None),
                   f"{constants.PROXY_STATS_PORT}/tcp": ("127.0.0.1", None)},
            **HARDENING,
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
def test_network(docker_client, proxy_image, standin_image) -> Iterator[TierNetwork]:
    network = TierNetwork(docker_client, proxy_image, standin_image)
    try:
        yield network
    finally:
        network.close()


@pytest.fixture(scope="module")
def tiers(test_network) -> tuple[str, str]:
    """One static and one app replica shared by the proxies that do not stop them."""
    static_server = test_network.static()
    _, app_server = test_network.app()
    return static_server, app_server


@pytest.fixture(scope="module")
def proxy(test_network, tiers) -> Proxy:
    """The front door with every setting at its default."""
    static_server, app_server = tiers
    front_door = test_network.proxy([static_server], [app_server])
    wait_for(front_door, "/Read.action?ready")
    wait_for(front_door, "/" + next(iter(STATIC_FILES)) + "?ready")
    return front_door


def single_replicas(tiers: tuple[str, str]) -> tuple[list[str], list[str]]:
    """The shared static and app replica as the proxy's server lists."""
    static_server, app_server = tiers
    return [static_server], [app_server]


def post(proxy: Proxy, title: str, session: requests.Session | None = None, **kwargs) -> requests.Response:
    sender = session or requests
    return sender.post(proxy.url + "/Post.action", data={"title": title, "body": "text"},
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


# --- routing -------------------------------------------------------------------------------------------

def test_static_paths_reach_static_tier(proxy):
    for relative, content in STATIC_FILES.items():
        response = requests.get(f"{proxy.url}/{relative}", timeout=TIMEOUT)
        assert response.status_code == 200, f"/{relative} answered {response.status_code}"
        assert response.content == content, f"/{relative} is not the static tier's file"
        assert "JSESSIONID" not in response.headers.get("Set-Cookie", ""), f"/{relative} came from the app"


def test_app_paths_reach_app_tier(proxy):
    home = requests.get(proxy.url + "/", timeout=TIMEOUT)
    assert home.status_code == 200 and "companynews app stand-in" in home.text, home.text[:200]
    news = requests.get(proxy.url + "/Read.action", timeout=TIMEOUT)
    assert news.status_code == 200 and "<h1>news</h1>" in news.text, news.text[:200]


def test_path_tricks_never_leave_static_root(proxy):
    tricks = [
        "/styles/../../etc/passwd",
        "/images/../../../../etc/passwd",
        "/styles/..%2f..%2fetc/passwd",
        "/styles/%2e%2e/%2e%2e/etc/passwd",
        "/styles/../../secret.txt",
        "/images/..%2f..%2fsecret.txt",
        "/styles//../../secret.txt",
    ]
    for path in tricks:
        status, body = raw_get(proxy, path)
        assert b"root:x:0:0" not in body and SECRET_OUTSIDE_STATIC_ROOT.encode() not in body, (
            f"{path} escaped the static root (HTTP {status})")
    # Dots that stay inside the site are resolved, not refused.
    status, body = raw_get(proxy, "/images/../styles/site.css")
    assert (status, body) == (200, STATIC_FILES["styles/site.css"])


def test_standby_app_replica_is_skipped(test_network, tiers):
    static_server, _ = tiers
    _, active = test_network.app()
    front_door = test_network.proxy([static_server], [test_network.standby(), active])
    started = time.monotonic()
    for number in range(10):
        response = requests.get(f"{front_door.url}/Read.action?standby={number}", timeout=TIMEOUT)
        assert response.status_code == 200, f"read {number} answered {response.status_code} with a standby"
        posted = post(front_door, f"while-standby-{number}")
        assert posted.status_code == 302, f"post {number} answered {posted.status_code} with a standby"
    assert time.monotonic() - started < 10, "skipping the refusing standby should cost no timeout"


def test_client_cannot_forge_forwarding_headers(proxy):
    forged = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Host": "evil.example",
              "X-Forwarded-Port": "1", "X-Forwarded-Proto": "gopher", "Forwarded": "host=evil.example",
              "Proxy": "http://evil.example"}
    response = requests.get(f"{proxy.url}/headers?forged={uuid.uuid4().hex}", headers=forged, timeout=TIMEOUT)
    seen_by_app = response.text.lower()
    assert "evil.example" not in seen_by_app and "203.0.113.7" not in seen_by_app, seen_by_app
    assert "x-forwarded-proto: http\n" in seen_by_app and "gopher" not in seen_by_app, seen_by_app
    port = proxy.url.rsplit(":", 1)[1]
    assert f"host: 127.0.0.1:{port}\n" in seen_by_app, "the app must see the Host the client used"


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
    front_door = test_network.proxy(*single_replicas(tiers), MICROCACHE_SECONDS="0")
    renders = set()
    for _ in range(3):
        response = requests.get(front_door.url + "/Read.action", timeout=TIMEOUT)
        assert "X-Cache-Status" not in response.headers
        renders.add(response.text)
    assert len(renders) == 3, "with MICROCACHE_SECONDS=0 every read must reach the app"


def test_reads_served_stale_and_posts_get_failover_page_while_app_is_down(test_network, tiers):
    static_server, _ = tiers
    app_container, app_server = test_network.app()
    front_door = test_network.proxy([static_server], [app_server])
    before = wait_for(front_door, "/Read.action")
    app_container.stop(timeout=2)

    during = requests.get(front_door.url + "/Read.action", timeout=TIMEOUT)
    assert during.status_code == 200, f"a cached read answered {during.status_code} with the app down"
    assert during.text == before.text
    assert during.headers.get("X-Cache-Status") == "STALE"

    posted = post(front_door, "during-failover")
    assert posted.status_code == 503, f"a post with the app down answered {posted.status_code}"
    assert "failing over" in posted.text and "resend" in posted.text
    assert posted.headers["Content-Type"].startswith("text/html")
    assert posted.headers.get("Retry-After") == "5"

    never_cached = requests.get(front_door.url + "/Post.action", timeout=TIMEOUT)
    assert never_cached.status_code == 503 and "failing over" in never_cached.text


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
    front_door = test_network.proxy(*single_replicas(tiers), POST_RATE_PER_MINUTE="1", POST_BURST="2")
    statuses = [post(front_door, f"burst-{number}").status_code for number in range(6)]
    assert statuses[:3] == [302, 302, 302], statuses
    assert set(statuses[3:]) == {429}, statuses
    assert requests.get(front_door.url + "/Read.action", timeout=TIMEOUT).status_code == 200, (
        "reads must not count against the post limit")


def test_post_from_outside_allow_list_gets_403(test_network, tiers):
    outsiders_only = test_network.proxy(*single_replicas(tiers), POST_ALLOW_CIDRS="192.0.2.0/24")
    assert post(outsiders_only, "not-allowed").status_code == 403
    assert requests.get(outsiders_only.url + "/Read.action", timeout=TIMEOUT).status_code == 200
    # Published ports reach the container from the network's gateway, so this test posts from SUBNET.
    allowed = test_network.proxy(*single_replicas(tiers), POST_ALLOW_CIDRS=f"192.0.2.0/24, {SUBNET}")
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

def test_security_headers_on_every_response(proxy):
    answers = {
        "app page": requests.get(proxy.url + "/Read.action", timeout=TIMEOUT),
        "static file": requests.get(proxy.url + "/styles/site.css", timeout=TIMEOUT),
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


def test_access_log_names_upstream_and_cache_status(proxy, tiers):
    static_server, app_server = tiers
    requests.get(proxy.url + "/styles/site.css", timeout=TIMEOUT)
    requests.get(proxy.url + "/Read.action", timeout=TIMEOUT)
    access_log = proxy.container.logs(stdout=True, stderr=False).decode(errors="replace")
    assert f"upstream={app_server}" in access_log and f"upstream={static_server}" in access_log
    assert "cache=MISS" in access_log or "cache=HIT" in access_log


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


def test_healthcheck_passes_in_hardened_container(docker_client, proxy, proxy_image):
    healthcheck = docker_client.images.get(proxy_image).attrs["Config"]["Healthcheck"]
    assert healthcheck["Test"] == ["CMD", "/usr/local/bin/healthcheck"]
    result = proxy.container.exec_run(["/usr/local/bin/healthcheck"])
    assert result.exit_code == 0, result.output.decode()
