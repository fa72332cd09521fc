"""The requests an attacker sends a Struts 2.1.8 app, for the shield's tests (docs/security.md lists them with
the layer that stops each): sent byte for byte to the front door or straight to the app server, and how the
stand-in app shows that one got through.

Each probe knows what the front door answers (its shield reason: method 405, path 404, query, content_type
or form 400) and what the app server's own filter answers when the door is skipped.
"""
from __future__ import annotations

import http.client
import re
from dataclasses import dataclass
from urllib.parse import quote

# OGNL that Struts 2.1.8 evaluates: its product (42) in a Location header means the probe got through.
EXPRESSION = quote("%{6*7}", safe="")
EVALUATED = "42"
OPEN_REDIRECT_HOST = "example.invalid"
# S2-009 / S2-005: OGNL in a parameter name; \u0023 is '#', which older filters looked for.
MEMBER_ACCESS_NAME = quote(r"('\u0023_memberAccess[\'allowStaticMethodAccess\']')(a)", safe="")
TOP_NAME = quote("top['foo'](0)", safe="")
FORM = "application/x-www-form-urlencoded"
# S2-045: OGNL in the Content-Type of a multipart request.
S2_045_CONTENT_TYPE = "%{(#_='multipart/form-data').(#x=6*7)}"
MULTIPART_BODY = (b"--cnprobe\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nmultipart probe\r\n"
                  b"--cnprobe\r\nContent-Disposition: form-data; name=\"body\"\r\n\r\nx\r\n--cnprobe--\r\n")
LEGIT_FORM = b"title=probe&body=probe"


@dataclass(frozen=True)
class Probe:
    name: str
    method: str
    target: str                      # the request target exactly as sent
    door_status: int                 # the front door's answer
    app_statuses: tuple[int, ...]    # the app server's answers, door skipped (Jetty may refuse first)
    content_type: str | None = None
    body: bytes = b""
    # nginx answers TRACE itself (405) before the shield runs: refused, but neither counted nor given a reason.
    counted_by_door: bool = True

    def __str__(self) -> str:
        return self.name


def _query(name: str, target: str) -> Probe:
    return Probe(name, "GET", target, 400, (400,))


def _form(name: str, body: str, target: str = "/Post.action", door_status: int = 400) -> Probe:
    return Probe(name, "POST", target, door_status, (400,), FORM, body.encode())


PROBES: tuple[Probe, ...] = (
    # S2-016 and relatives: prefixes whose rest Struts evaluates, in the query and in a form body.
    _query("redirect-prefix-in-query", f"/Read.action?redirect:{EXPRESSION}"),
    _query("redirectAction-prefix-in-query", f"/Read.action?redirectAction:{EXPRESSION}"),
    _query("action-prefix-in-query", f"/Read.action?action:{EXPRESSION}"),
    _query("open-redirect-in-query", f"/?redirect:http://{OPEN_REDIRECT_HOST}/"),
    _query("method-prefix-in-query", "/Post.action?method:execute"),
    _query("member-access-name-in-query", f"/Read.action?{MEMBER_ACCESS_NAME}=1"),
    _query("top-name-in-query", f"/Read.action?{TOP_NAME}=1"),
    _query("post-by-get", "/Post.action?title=posted-by-get&body=x"),
    _form("redirect-prefix-in-form", f"title=probe&body=probe&redirect:{EXPRESSION}="),
    _form("redirectAction-prefix-in-form", f"title=probe&body=probe&redirectAction:{EXPRESSION}="),
    _form("action-prefix-in-form", f"action:{EXPRESSION}=&title=probe&body=probe"),
    _form("method-prefix-in-form", "title=probe&method:execute=&body=probe"),
    _form("member-access-name-in-form", f"title=probe&body=probe&{MEMBER_ACCESS_NAME}=1"),
    _form("top-name-in-form", f"{TOP_NAME}=1&title=probe&body=probe"),
    _form("repeated-title-in-form", "title=probe&title=probe&body=probe"),
    _form("other-name-in-form", "title=probe&body=probe&author=probe"),
    Probe("query-on-post", "POST", f"/Post.action?redirect:{EXPRESSION}", 400, (400,), FORM, LEGIT_FORM),
    # S2-045: a multipart request, and OGNL in its Content-Type; also on a read.
    Probe("multipart-post", "POST", "/Post.action", 400, (400,), "multipart/form-data; boundary=cnprobe",
          MULTIPART_BODY),
    Probe("ognl-content-type-post", "POST", "/Post.action", 400, (400,), S2_045_CONTENT_TYPE, MULTIPART_BODY),
    Probe("ognl-content-type-read", "GET", "/Read.action", 400, (400,), S2_045_CONTENT_TYPE),
    # Methods: Jetty's own defaults refuse TRACE (403) before any filter.
    Probe("trace", "TRACE", "/Read.action", 405, (403, 405), counted_by_door=False),
    Probe("put", "PUT", "/Read.action", 405, (405,), FORM, LEGIT_FORM),
    Probe("delete", "DELETE", "/Post.action", 405, (405,)),
    Probe("post-to-index", "POST", "/", 405, (405,), FORM, LEGIT_FORM),
    # Paths that are not the app's, or the app's written so that a filter comparing strings misses them.
    # Jetty may refuse an ambiguous path itself (400).
    Probe("path-parameter", "GET", "/Read.action;x", 404, (400, 404)),
    Probe("double-slash", "GET", "//Read.action", 404, (400, 404)),
    Probe("encoded-letter", "GET", "/%52ead.action", 404, (400, 404)),
    Probe("web-inf", "GET", "/WEB-INF/web.xml", 404, (400, 404)),
    Probe("jsp", "GET", "/index.jsp", 404, (400, 404)),
)

# What the stand-in logs for a request that passed the shield (StrutsDispatcherStandIn): only the form.
RECEIVED = "standin: received "
_LEGIT_RECEIVED = re.compile(
    r"standin: received POST /Post\.action content-type=application/x-www-form-urlencoded(; ?charset=UTF-8)? "
    r"names=\[body:1 title:1\]$")


@dataclass(frozen=True)
class Answer:
    status: int
    location: str
    body: bytes


def send(port: int, probe: Probe, timeout: float = 10) -> Answer:
    """Send `probe` to 127.0.0.1:`port` exactly as written (no client-side normalisation)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.putrequest(probe.method, probe.target, skip_accept_encoding=True)
        if probe.content_type is not None:
            connection.putheader("Content-Type", probe.content_type)
        if probe.body or probe.method in ("POST", "PUT"):
            connection.putheader("Content-Length", str(len(probe.body)))
        connection.endheaders(probe.body or None)
        response = connection.getresponse()
        return Answer(response.status, response.getheader("Location") or "", response.read())
    finally:
        connection.close()


def assert_refused(answer: Answer, expected: tuple[int, ...], probe: Probe, where: str) -> None:
    assert answer.status in expected, f"{probe} at {where}: HTTP {answer.status}, expected {expected}"
    assert f"/{EVALUATED}" not in answer.location and OPEN_REDIRECT_HOST not in answer.location, (
        f"{probe} at {where}: Struts evaluated it (Location: {answer.location})")


def unexpected_receipts(app_log: str) -> list[str]:
    """The stand-in's log lines of requests other than a well-formed post: each is a probe that got through."""
    return [line[line.index(RECEIVED):] for line in app_log.splitlines()
            if RECEIVED in line and not _LEGIT_RECEIVED.search(line[line.index(RECEIVED):].rstrip())]
