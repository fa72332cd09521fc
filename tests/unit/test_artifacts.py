"""Artifact fetching, verification and unpacking, against a local HTTP server on 127.0.0.1 and local files."""
from __future__ import annotations

import hashlib
import io
import socket
import stat
import string
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.artifacts import (
    ArtifactError,
    ArtifactSource,
    PreparedArtifacts,
    fetch_artifact,
    prepare_artifacts,
    unpack_static,
    validate_war,
)

MAX_BYTES = 64 * 1024


def zip_bytes(files: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    """A zip holding `files` verbatim (names are not sanitised) and symlink entries name -> target."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(zipfile.ZipInfo(name), data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3  # Unix, so the mode in external_attr is meaningful
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return buffer.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


WAR = zip_bytes({"WEB-INF/web.xml": b"<web-app/>", "index.jsp": b"<html/>"})
STATIC = zip_bytes({"static/styles/site.css": b"body {}", "static/images/logo.png": b"\x89PNG"})


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    delay: float = 0.0      # seconds to stay silent before answering
    chunked: bool = False   # send Transfer-Encoding: chunked, so there is no Content-Length
    pause_at: int | None = None             # send this many bytes of the body, then wait for `resume`
    resume: threading.Event | None = None


class ArtifactServer:
    """Serves scripted replies per path and counts the requests; the last reply of a path repeats."""

    def __init__(self) -> None:
        self.routes: dict[str, list[Reply]] = {}
        self.requests: list[str] = []
        self.released = threading.Event()   # wakes sleeping handlers at teardown
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.artifact_server = self  # type: ignore[attr-defined]
        # A short poll interval keeps shutdown() (and so each test's teardown) quick.
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    def serve(self, path: str, *replies: Reply) -> str:
        self.routes[path] = list(replies)
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def count(self, path: str) -> int:
        return self.requests.count(path)

    def next_reply(self, path: str) -> Reply:
        self.requests.append(path)
        replies = self.routes.get(path)
        if not replies:
            return Reply(status=404, body=b"not found")
        return replies.pop(0) if len(replies) > 1 else replies[0]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (the name http.server dispatches to)
        server: ArtifactServer = self.server.artifact_server  # type: ignore[attr-defined]
        reply = server.next_reply(self.path)
        if reply.delay:
            server.released.wait(reply.delay)
        self.close_connection = True
        try:
            self.send_response(reply.status)
            self.send_header("Connection", "close")
            if reply.chunked:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for start in range(0, len(reply.body), 1024):
                    piece = reply.body[start:start + 1024]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if reply.pause_at is not None and reply.resume is not None:
                    self.wfile.write(reply.body[:reply.pause_at])
                    self.wfile.flush()
                    reply.resume.wait(10)
                    self.wfile.write(reply.body[reply.pause_at:])
                else:
                    self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up on purpose (size cap, timeout)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server():
    artifact_server = ArtifactServer()
    artifact_server.thread.start()
    yield artifact_server
    artifact_server.released.set()
    artifact_server.httpd.shutdown()
    artifact_server.httpd.server_close()
    artifact_server.thread.join(timeout=5)


@dataclass
class Workspace:
    cache: Path     # the cache dir handed to the code under test
    outside: Path   # the working directory and the system temp dir: must stay empty
    sources: Path   # where tests put local artifacts


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Workspace:
    outside = tmp_path / "outside"
    sources = tmp_path / "sources"
    outside.mkdir()
    sources.mkdir()
    # Stray relative paths and stray temp files would both land in `outside`, where the tests look for them.
    monkeypatch.chdir(outside)
    monkeypatch.setattr(tempfile, "tempdir", str(outside))
    return Workspace(cache=tmp_path / "cache", outside=outside, sources=sources)


def not_verified_entries(cache: Path) -> list[Path]:
    """Everything in the cache except complete, verified entries and unpacked static folders."""
    found = []
    for path in cache.rglob("*") if cache.exists() else []:
        parts = path.relative_to(cache).parts
        if path.name.startswith(".partial"):
            found.append(path)
        elif path.is_file() or path.is_symlink():
            if parts[0] == "sha256" and len(parts) == 3 and sha256(path.read_bytes()) == parts[1]:
                continue
            if parts[0] == "unpacked" and len(parts) >= 4 and parts[2] == "static":
                continue
            found.append(path)
    return found


def assert_clean_failure(error: pytest.ExceptionInfo[ArtifactError], source: ArtifactSource,
                         workspace: Workspace) -> None:
    message = str(error.value)
    assert source.key in message, f"error does not name the key {source.key}: {message}"
    assert source.url in message, f"error does not name the URL {source.url}: {message}"
    outside = list(workspace.outside.iterdir())
    assert outside == [], f"written outside the cache: {outside}"
    leftovers = not_verified_entries(workspace.cache)
    assert leftovers == [], f"left in the cache after a failure: {leftovers}"


# --- fetching ---------------------------------------------------------------------------------------------

def test_http_download_lands_in_content_addressed_cache_and_a_pin_reuses_it(server, workspace):
    url = server.serve("/companyNews.war", Reply(body=WAR))

    fetched = fetch_artifact(ArtifactSource("warUrl", url), workspace.cache, max_bytes=MAX_BYTES)
    again = fetch_artifact(ArtifactSource("warUrl", url, sha256(WAR)), workspace.cache, max_bytes=MAX_BYTES)

    assert fetched == workspace.cache / "sha256" / sha256(WAR) / "companyNews.war"
    assert fetched.read_bytes() == WAR
    assert again == fetched
    assert server.count("/companyNews.war") == 1, "a pinned, cached artifact was downloaded again"
    assert not_verified_entries(workspace.cache) == []
    assert list(workspace.outside.iterdir()) == []


def test_download_in_progress_is_written_inside_the_cache_only(server, workspace):
    resume = threading.Event()
    url = server.serve("/companyNews.war", Reply(body=WAR, pause_at=len(WAR) // 2, resume=resume))
    result: list[Path] = []
    fetching = threading.Thread(target=lambda: result.append(
        fetch_artifact(ArtifactSource("warUrl", url), workspace.cache, max_bytes=MAX_BYTES, timeout=5)))
    fetching.start()
    try:
        deadline = time.monotonic() + 5
        while not list(workspace.cache.glob(".partial*")) and time.monotonic() < deadline:
            time.sleep(0.01)
        partial = list(workspace.cache.glob(".partial*"))
        assert len(partial) == 1, f"no temporary file in the cache mid-download: {partial}"
        assert list(workspace.outside.iterdir()) == [], "the download in progress was written outside the cache"
    finally:
        resume.set()
        fetching.join(timeout=10)

    assert result and result[0].read_bytes() == WAR
    assert not_verified_entries(workspace.cache) == []


def test_unpinned_fetch_downloads_again_because_the_content_may_have_changed(server, workspace):
    url = server.serve("/companyNews.war", Reply(body=WAR))

    fetch_artifact(ArtifactSource("warUrl", url), workspace.cache, max_bytes=MAX_BYTES)
    fetch_artifact(ArtifactSource("warUrl", url), workspace.cache, max_bytes=MAX_BYTES)

    assert server.count("/companyNews.war") == 2


@pytest.mark.parametrize("spelling", ["file_url", "absolute_path", "relative_path"])
def test_local_artifacts_are_copied_into_the_cache_and_a_pin_reuses_them(workspace, spelling):
    local = workspace.sources / "companyNews.war"
    local.write_bytes(WAR)
    url = {"file_url": local.as_uri(), "absolute_path": str(local),
           "relative_path": f"../sources/{local.name}"}[spelling]

    fetched = fetch_artifact(ArtifactSource("warUrl", url), workspace.cache, max_bytes=MAX_BYTES)
    local.unlink()  # proves the pinned second call does not read the source at all
    again = fetch_artifact(ArtifactSource("warUrl", url, sha256(WAR)), workspace.cache, max_bytes=MAX_BYTES)

    assert fetched == again == workspace.cache / "sha256" / sha256(WAR) / "companyNews.war"
    assert fetched.read_bytes() == WAR
    assert list(workspace.outside.iterdir()) == []


def test_cached_artifact_is_readable_by_the_non_root_image_user(server, workspace):
    url = server.serve("/companyNews.war", Reply(body=WAR))

    fetched = fetch_artifact(ArtifactSource("warUrl", url), workspace.cache, max_bytes=MAX_BYTES)

    assert fetched.stat().st_mode & 0o444 == 0o444, f"{fetched} has mode {oct(fetched.stat().st_mode)}"


def test_damaged_cache_entry_is_replaced_despite_the_pin(server, workspace):
    url = server.serve("/companyNews.war", Reply(body=WAR))
    source = ArtifactSource("warUrl", url, sha256(WAR))
    fetched = fetch_artifact(source, workspace.cache, max_bytes=MAX_BYTES)
    fetched.write_bytes(b"edited by hand")

    again = fetch_artifact(source, workspace.cache, max_bytes=MAX_BYTES)

    assert again.read_bytes() == WAR
    assert server.count("/companyNews.war") == 2


def test_http_404_fails_at_once_naming_key_and_url(server, workspace):
    source = ArtifactSource("warUrl", server.serve("/missing.war", Reply(status=404, body=b"no such key")))

    with pytest.raises(ArtifactError, match="404") as error:
        fetch_artifact(source, workspace.cache, max_bytes=MAX_BYTES, retries=3)

    assert server.count("/missing.war") == 1, "a 404 was retried"
    assert_clean_failure(error, source, workspace)


def test_silent_server_times_out_within_bounded_time(server, workspace):
    source = ArtifactSource("warUrl", server.serve("/slow.war", Reply(body=WAR, delay=10)))

    started = time.monotonic()
    with pytest.raises(ArtifactError, match="timeout") as error:
        fetch_artifact(source, workspace.cache, max_bytes=MAX_BYTES, timeout=0.3, retries=3)
    elapsed = time.monotonic() - started

    assert elapsed < 3, f"a 0.3 s timeout took {elapsed:.1f} s"
    assert_clean_failure(error, source, workspace)


def test_5xx_is_retried_until_the_server_recovers(server, workspace):
    url = server.serve("/flaky.war", Reply(status=503), Reply(body=WAR))

    fetched = fetch_artifact(ArtifactSource("warUrl", url), workspace.cache, max_bytes=MAX_BYTES, retries=3)

    assert fetched.read_bytes() == WAR
    assert server.count("/flaky.war") == 2


def test_persistent_5xx_gives_up_after_the_retries_naming_the_status(server, workspace):
    source = ArtifactSource("warUrl", server.serve("/broken.war", Reply(status=500, body=b"oops")))

    with pytest.raises(ArtifactError, match="500") as error:
        fetch_artifact(source, workspace.cache, max_bytes=MAX_BYTES, retries=1)

    assert server.count("/broken.war") == 2, "expected the first attempt and one retry"
    assert_clean_failure(error, source, workspace)


def test_refused_connection_is_reported_with_its_cause(workspace):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source = ArtifactSource("warUrl", f"http://127.0.0.1:{port}/companyNews.war")  # nothing listens here

    with pytest.raises(ArtifactError, match="refused") as error:
        fetch_artifact(source, workspace.cache, max_bytes=MAX_BYTES, retries=1)

    assert_clean_failure(error, source, workspace)


def test_checksum_mismatch_is_refused_and_not_cached(server, workspace):
    wrong_pin = sha256(b"some other build")
    source = ArtifactSource("warUrl", server.serve("/companyNews.war", Reply(body=WAR)), wrong_pin)

    with pytest.raises(ArtifactError) as error:
        fetch_artifact(source, workspace.cache, max_bytes=MAX_BYTES)

    message = str(error.value)
    assert wrong_pin in message and sha256(WAR) in message, f"expected and actual sha256 missing: {message}"
    assert "warSha256" in message
    assert_clean_failure(error, source, workspace)


def test_malformed_pin_is_refused_naming_the_pin_key(server, workspace):
    source = ArtifactSource("staticUrl", server.serve("/static.zip", Reply(body=STATIC)), "not-a-sha")

    with pytest.raises(ArtifactError, match="staticSha256") as error:
        fetch_artifact(source, workspace.cache, max_bytes=MAX_BYTES)

    assert server.count("/static.zip") == 0
    assert_clean_failure(error, source, workspace)


def test_download_over_the_cap_is_refused_from_its_content_length(server, workspace):
    source = ArtifactSource("warUrl", server.serve("/huge.war", Reply(body=b"x" * (MAX_BYTES + 1))))

    with pytest.raises(ArtifactError, match="artifactMaxBytes") as error:
        fetch_artifact(source, workspace.cache, max_bytes=MAX_BYTES)

    assert "Content-Length" in str(error.value)
    assert_clean_failure(error, source, workspace)


def test_chunked_download_over_the_cap_is_cut_off_while_streaming(server, workspace):
    body = b"x" * (4 * MAX_BYTES)
    source = ArtifactSource("warUrl", server.serve("/huge.war", Reply(body=body, chunked=True)))

    with pytest.raises(ArtifactError, match="artifactMaxBytes") as error:
        fetch_artifact(source, workspace.cache, max_bytes=MAX_BYTES)

    assert "more than" in str(error.value)
    assert_clean_failure(error, source, workspace)


def test_local_file_over_the_cap_is_refused(workspace):
    local = workspace.sources / "huge.war"
    local.write_bytes(b"x" * (MAX_BYTES + 1))
    source = ArtifactSource("warUrl", local.as_uri())

    with pytest.raises(ArtifactError, match="artifactMaxBytes") as error:
        fetch_artifact(source, workspace.cache, max_bytes=MAX_BYTES)

    assert_clean_failure(error, source, workspace)


def test_missing_local_file_is_reported(workspace):
    source = ArtifactSource("warUrl", str(workspace.sources / "absent.war"))

    with pytest.raises(ArtifactError, match="no file") as error:
        fetch_artifact(source, workspace.cache, max_bytes=MAX_BYTES)

    assert_clean_failure(error, source, workspace)


@pytest.mark.parametrize("url", ["ftp://example.com/companyNews.war", "s3://infra-assessment/companyNews.war"])
def test_unsupported_scheme_is_refused_naming_the_allowed_ones(workspace, url):
    source = ArtifactSource("warUrl", url)

    with pytest.raises(ArtifactError) as error:
        fetch_artifact(source, workspace.cache, max_bytes=MAX_BYTES)

    for allowed in ("https://", "http://", "file://"):
        assert allowed in str(error.value), f"{allowed} not named in: {error.value}"
    assert not workspace.cache.exists(), "the cache was created for a URL that was refused outright"
    assert_clean_failure(error, source, workspace)


# --- validating and unpacking -----------------------------------------------------------------------------

def test_prepare_artifacts_fetches_validates_unpacks_and_reuses_everything(server, workspace):
    war = ArtifactSource("warUrl", server.serve("/companyNews.war", Reply(body=WAR)))
    static = ArtifactSource("staticUrl", server.serve("/static.zip", Reply(body=STATIC)))

    prepared = prepare_artifacts(war, static, workspace.cache, max_bytes=MAX_BYTES)
    pinned = prepare_artifacts(ArtifactSource(war.key, war.url, sha256(WAR)),
                               ArtifactSource(static.key, static.url, sha256(STATIC)),
                               workspace.cache, max_bytes=MAX_BYTES)

    assert prepared == pinned == PreparedArtifacts(
        war=workspace.cache / "sha256" / sha256(WAR) / "companyNews.war", war_sha256=sha256(WAR),
        static_dir=workspace.cache / "unpacked" / sha256(STATIC) / "static")
    assert (prepared.static_dir / "styles" / "site.css").read_bytes() == b"body {}"
    assert (prepared.static_dir / "images" / "logo.png").read_bytes() == b"\x89PNG"
    assert server.requests == ["/companyNews.war", "/static.zip"], "pinned reruns must not download"
    assert not_verified_entries(workspace.cache) == []
    assert list(workspace.outside.iterdir()) == []


@pytest.mark.parametrize("body, expected", [
    (b"<html>Access Denied</html>", "not a zip"),
    (zip_bytes({"index.jsp": b"<html/>"}), "WEB-INF/web.xml"),
], ids=["not_a_zip", "no_web_xml"])
def test_war_that_jetty_could_not_deploy_is_refused(server, workspace, body, expected):
    war = ArtifactSource("warUrl", server.serve("/companyNews.war", Reply(body=body)))
    static = ArtifactSource("staticUrl", server.serve("/static.zip", Reply(body=STATIC)))

    with pytest.raises(ArtifactError, match=expected) as error:
        prepare_artifacts(war, static, workspace.cache, max_bytes=MAX_BYTES)

    assert server.count("/static.zip") == 0, "the static archive was fetched after the war was refused"
    assert_clean_failure(error, war, workspace)


def test_validate_war_accepts_a_war_with_its_descriptor(workspace):
    war = workspace.sources / "companyNews.war"
    war.write_bytes(WAR)

    validate_war(war, ArtifactSource("warUrl", str(war)))


@pytest.mark.parametrize("archive, expected", [
    (zip_bytes({"static/site.css": b"", "../evil": b"pwned"}), "'..'"),
    (zip_bytes({"static/site.css": b"", "static/../../evil": b"pwned"}), "'..'"),
    (zip_bytes({"static/site.css": b"", "/etc/evil": b"pwned"}), "absolute"),
    (zip_bytes({"static/site.css": b"", "C:/evil": b"pwned"}), "drive"),
    (zip_bytes({"static/site.css": b""}, symlinks={"static/evil": "/etc/passwd"}), "symbolic link"),
    (zip_bytes({"site/site.css": b"", "index.html": b""}), "no static/"),
    (b"PK not really a zip", "not a zip"),
], ids=["parent", "nested_parent", "absolute", "drive", "symlink", "no_static_folder", "not_a_zip"])
def test_unsafe_or_wrong_static_archive_is_refused_before_writing(server, workspace, archive, expected):
    war = ArtifactSource("warUrl", server.serve("/companyNews.war", Reply(body=WAR)))
    static = ArtifactSource("staticUrl", server.serve("/static.zip", Reply(body=archive)))

    with pytest.raises(ArtifactError, match=expected) as error:
        prepare_artifacts(war, static, workspace.cache, max_bytes=MAX_BYTES)

    assert_clean_failure(error, static, workspace)
    assert not (workspace.cache / "unpacked").exists(), "something was unpacked from a refused archive"
    assert not list(workspace.cache.parent.rglob("evil")), "an evil entry was written"


def test_static_archive_that_unpacks_past_the_cap_is_refused(workspace):
    bomb = workspace.sources / "static.zip"
    bomb.write_bytes(zip_bytes({"static/zeros.bin": bytes(2 * MAX_BYTES)}))  # compresses to almost nothing
    source = ArtifactSource("staticUrl", str(bomb))
    dest = workspace.cache / "unpacked" / "bomb"

    with pytest.raises(ArtifactError, match="unpacks to") as error:
        unpack_static(bomb, source, dest, max_bytes=MAX_BYTES)

    assert not dest.parent.exists()
    assert_clean_failure(error, source, workspace)


def test_unpacked_static_is_readable_by_the_non_root_image_user(workspace):
    archive = workspace.sources / "static.zip"
    archive.write_bytes(STATIC)

    static_dir = unpack_static(archive, ArtifactSource("staticUrl", str(archive)), workspace.cache / "out")

    for path in [static_dir.parent, *static_dir.rglob("*")]:
        wanted = 0o555 if path.is_dir() else 0o444
        assert path.stat().st_mode & wanted == wanted, f"{path} has mode {oct(path.stat().st_mode)}"


# --- properties -------------------------------------------------------------------------------------------

_component = st.text(string.ascii_letters + string.digits + "-_.", min_size=1, max_size=10).filter(
    lambda part: part not in (".", ".."))
_relative_name = st.lists(_component, min_size=1, max_size=4).map("/".join)


def _files_only(names: list[str]) -> list[str]:
    """Drop names that another name uses as a folder: a path cannot be both a file and a folder."""
    return [name for name in names if not any(other.startswith(name + "/") for other in names)]


_safe_names = st.lists(_relative_name, max_size=8, unique=True).map(
    lambda names: _files_only(sorted(set(names) | {"static/index.html"})))


@st.composite
def _unsafe_name(draw) -> str:
    tail = draw(_relative_name)
    climbs = "../" * draw(st.integers(1, 3))
    return draw(st.sampled_from([
        climbs + tail,
        f"static/{climbs}{tail}",
        f"static/a/{climbs}{tail}",
        "/" + tail,
        "C:/" + tail,
        "C:" + tail,
        "..\\" + tail,
        "\\" + tail,
    ]))


def _all_files(root: Path) -> set[Path]:
    return {path for path in root.rglob("*") if not path.is_dir()}


_property_settings = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_property_settings
@given(names=_safe_names)
def test_every_safe_member_is_unpacked_inside_dest(names):
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        archive = root / "static.zip"
        archive.write_bytes(zip_bytes({name: name.encode() for name in names}))
        dest = root / "cache" / "unpacked" / "hex"

        static_dir = unpack_static(archive, ArtifactSource("staticUrl", str(archive)), dest)

        assert static_dir == dest / "static"
        for name in names:
            assert (dest / name).read_bytes() == name.encode(), f"{name} was not unpacked to {dest / name}"
        written = _all_files(root) - {archive}
        assert written == {dest / name for name in names}, f"unexpected files: {written}"
        assert all(path.resolve().is_relative_to(dest.resolve()) for path in written)


@_property_settings
@given(names=_safe_names, unsafe=_unsafe_name(), data=st.data())
def test_any_unsafe_member_is_refused_and_nothing_is_written(names, unsafe, data):
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        # Deep enough that even a buggy climb of three '..' stays inside root, where the check below looks.
        dest = root / "work" / "cache" / "unpacked" / "hex"
        if unsafe.startswith("/"):
            unsafe = f"{root}/abs/{unsafe.lstrip('/')}"  # absolute, but pointing inside root
        members = list(names)
        members.insert(data.draw(st.integers(0, len(members))), unsafe)
        archive = root / "static.zip"
        archive.write_bytes(zip_bytes({name: b"payload" for name in members}))
        source = ArtifactSource("staticUrl", str(archive))

        with pytest.raises(ArtifactError) as error:
            unpack_static(archive, source, dest)

        assert source.key in str(error.value) and source.url in str(error.value)
        assert sorted(root.rglob("*")) == [archive], f"{unsafe!r} was refused but something was written"


def test_build_context_is_staged_once_per_content(tmp_path):
    from components.artifacts import stage_build_context

    image_dir = tmp_path / "docker" / "app"
    image_dir.mkdir(parents=True)
    (image_dir / "Dockerfile").write_text("FROM scratch\n")
    war = tmp_path / "companyNews.war"
    war.write_bytes(b"first release")
    first = stage_build_context(image_dir, tmp_path / "contexts" / "app", {"companyNews.war": war})
    assert (first / "companyNews.war").read_bytes() == b"first release"
    (first / "marker").write_text("a running up builds from here")
    # Staging the same content again (a preview) must not touch the folder an up may be building from.
    assert stage_build_context(image_dir, tmp_path / "contexts" / "app", {"companyNews.war": war}) == first
    assert (first / "marker").exists(), "the context was rewritten"
    war.write_bytes(b"second release")
    second = stage_build_context(image_dir, tmp_path / "contexts" / "app", {"companyNews.war": war})
    assert second != first and (second / "companyNews.war").read_bytes() == b"second release"
    assert (first / "companyNews.war").read_bytes() == b"first release", "the older context changed under its build"
