"""Fetch, verify and stage the deploy artifacts (companyNews.war, static.zip) for the image builds.

An artifact comes from an https/http/file URL or a plain path, is checked against an optional sha256 pin and
a size cap, and lands in a content-addressed cache: `<cache>/sha256/<hex>/<name>`, static.zip unpacked
beside it in `<cache>/unpacked/<hex>/`. Every failure is one `ArtifactError` naming the config key.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import BinaryIO
from urllib.parse import unquote, urlsplit, urlunsplit
from urllib.request import url2pathname

import pulumi
import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ReadTimeoutError
from urllib3.util.retry import Retry

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CACHE_DIR = REPO_ROOT / ".artifacts"  # gitignored
DEFAULT_MAX_BYTES = 200 * 1024 * 1024

ALLOWED_SCHEMES = ("https://", "http://", "file://")
WAR_DESCRIPTOR = "WEB-INF/web.xml"
STATIC_FOLDER = "static"

_CHUNK_BYTES = 1024 * 1024
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# Waits between attempts are 0 s, 1 s, 2 s, ...: enough for a flaky edge to recover, short enough for a deploy.
_BACKOFF_FACTOR = 0.5
# Temporary files and folders carry this prefix, so a stray one is recognisable (and never a cache entry).
_PARTIAL_PREFIX = ".partial-"


class ArtifactError(pulumi.RunError):
    """An artifact could not be fetched, verified or unpacked; the message says which key, why, and the fix.
    A pulumi.RunError, so that `pulumi up` prints this message alone, not a Python traceback."""


@dataclass(frozen=True)
class ArtifactSource:
    key: str                    # the config key holding the URL, e.g. "warUrl"
    url: str                    # https://, http://, file:// or a plain path
    sha256: str | None = None   # the pin, from the config key `pin_key`

    @property
    def pin_key(self) -> str:
        """The config key of the sha256 pin: "warUrl" -> "warSha256"."""
        stem = self.key[: -len("Url")] if self.key.endswith("Url") else self.key
        return f"{stem}Sha256"


@dataclass(frozen=True)
class PreparedArtifacts:
    war: Path           # verified companyNews.war inside the cache
    war_sha256: str     # its sha256, the name of its cache entry
    static_dir: Path    # the unpacked static/ folder inside the cache


def _shown(url: str) -> str:
    """The URL as it may appear in logs: a password or a query string (e.g. a presigned S3 signature) hidden."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. a broken IPv6 literal; _locate reports it
        return url
    if parts.scheme.lower() not in ("http", "https"):
        return url
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, host = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}:***@{host}"
    query = "<redacted>" if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _failure(source: ArtifactSource, cause: str, fix: str) -> ArtifactError:
    return ArtifactError(f"{source.key}={_shown(source.url)}: {cause}; {fix}")


def _chain(error: BaseException) -> list[BaseException]:
    """The error and what it wraps, outermost first: requests wraps urllib3, which wraps the socket error."""
    chain = [error]
    while True:
        current = chain[-1]
        inner = getattr(current, "reason", None)    # urllib3's MaxRetryError
        if not isinstance(inner, BaseException):
            inner = current.args[0] if current.args and isinstance(current.args[0], BaseException) else None
        inner = inner or current.__cause__ or current.__context__
        if inner is None or any(inner is seen for seen in chain):
            return chain
        chain.append(inner)


def _is_timeout(error: BaseException) -> bool:
    return any(isinstance(link, (requests.Timeout, ReadTimeoutError, TimeoutError)) for link in _chain(error))


def _checked_pin(source: ArtifactSource) -> str | None:
    if source.sha256 is None or source.sha256 == "":
        return None
    pin = source.sha256.strip().lower()
    if not _SHA256_HEX.fullmatch(pin):
        raise _failure(source, f"{source.pin_key}={source.sha256!r} is not a sha256 (64 hex digits)",
                       f"set {source.pin_key} to the output of `sha256sum` on the artifact, or unset it")
    return pin


def _locate(source: ArtifactSource) -> tuple[Path | None, str]:
    """Return (local file, or None for an HTTP download; the file name the cache entry gets)."""
    try:
        parts = urlsplit(source.url)
    except ValueError as error:
        raise _failure(source, f"the URL cannot be parsed ({error})", "write it as https://host/path/file") from error
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        if not parts.hostname:
            raise _failure(source, "the URL names no host", "write it as https://host/path/file")
        local, name = None, PurePosixPath(unquote(parts.path)).name
    elif scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise _failure(source, f"file:// URLs must name a local file, not host {parts.netloc!r}",
                           "write it as file:///absolute/path or give a plain path")
        local = Path(url2pathname(parts.path))
        name = local.name
    elif scheme == "":
        local = Path(source.url).expanduser()
        name = local.name
    else:
        raise _failure(source, f"the scheme {scheme}:// is not supported",
                       f"use one of {', '.join(ALLOWED_SCHEMES)} or a plain filesystem path")
    # The name becomes a path component in the cache: it must not be empty, "." or "..".
    if name in ("", ".", "..") or "\x00" in name:
        raise _failure(source, "the URL does not end in a file name",
                       "point it at the artifact file itself, e.g. .../companyNews.war")
    return local, name


class _CappedHashingWriter:
    """Writes chunks to a file while hashing and counting them; refuses the chunk that crosses the cap."""

    def __init__(self, handle: BinaryIO, source: ArtifactSource, max_bytes: int):
        self._handle = handle
        self._source = source
        self._max_bytes = max_bytes
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self._max_bytes:
            raise _too_large(self._source, self._max_bytes, f"it sent more than {self._max_bytes} bytes")
        self._hash.update(chunk)
        self._handle.write(chunk)

    @property
    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def _too_large(source: ArtifactSource, max_bytes: int, detail: str) -> ArtifactError:
    return _failure(source, f"the artifact is larger than artifactMaxBytes={max_bytes} ({detail})",
                    "check that the URL points at the right file, "
                    "or raise artifactMaxBytes if the artifact really is this big")


def _session(retries: int) -> requests.Session:
    retry = Retry(
        total=retries,
        connect=retries,
        # A read that timed out or broke is not retried: the brief is connect errors and 5xx, and a silent
        # server would otherwise cost (retries + 1) timeouts.
        read=False,
        status=retries,
        status_forcelist=range(500, 600),   # 404 and other 4xx are final at once
        allowed_methods=frozenset({"GET"}),
        backoff_factor=_BACKOFF_FACTOR,
        # After the last attempt hand back the 5xx response, so the error can quote its status.
        raise_on_status=False,
        # A Retry-After of hours would stall the deploy; our own backoff bounds the wait instead.
        respect_retry_after_header=False,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    # Ask for the bytes as stored: the pin is the sha256 of the file, not of a gzip transfer encoding.
    session.headers["Accept-Encoding"] = "identity"
    return session


def _http_status_failure(source: ArtifactSource, response: requests.Response, retries: int) -> ArtifactError:
    status = f"HTTP {response.status_code} {response.reason or ''}".rstrip()
    if response.status_code >= 500:
        return _failure(source, f"the server answered {status} (after {retries} retries)",
                        "the server is failing: try again later, or point the key at a mirror or a local copy")
    if response.status_code in (401, 403, 404, 410):
        return _failure(source, f"the server answered {status}",
                        "check the URL, and that the object exists and is readable without credentials")
    return _failure(source, f"the server answered {status}", "check the URL")


def _download(source: ArtifactSource, writer: _CappedHashingWriter, *, max_bytes: int, timeout: float,
              retries: int) -> None:
    try:
        with _session(retries) as session, \
                session.get(source.url, stream=True, timeout=(timeout, timeout)) as response:
            if response.status_code >= 400:
                raise _http_status_failure(source, response, retries)
            declared = response.headers.get("Content-Length", "")
            # Refuse before reading a byte when the server says up front that it is too big.
            if declared.isdigit() and int(declared) > max_bytes:
                raise _too_large(source, max_bytes, f"Content-Length is {declared}")
            for chunk in response.iter_content(_CHUNK_BYTES):
                writer.write(chunk)
    except requests.RequestException as error:
        if _is_timeout(error):
            raise _failure(source, f"no answer within the {timeout:g} s timeout",
                           "check that the server is up and reachable, or use a closer mirror") from error
        cause = _chain(error)[-1]   # "Connection refused" says more than the wrappers' connection-pool reprs
        raise _failure(source, f"the download failed ({type(cause).__name__}: {cause}; up to {retries} retries)",
                       "check the host name, the network and any proxy, or use a local copy (file:// or a path)"
                       ) from error


def _copy_local(source: ArtifactSource, local: Path, writer: _CappedHashingWriter, max_bytes: int) -> None:
    try:
        if not local.is_file():
            raise _failure(source, f"there is no file at {local}", "check the path, or give an https:// URL")
        size = local.stat().st_size
        if size > max_bytes:
            raise _too_large(source, max_bytes, f"{local} is {size} bytes")
        with local.open("rb") as handle:
            for chunk in iter(lambda: handle.read(_CHUNK_BYTES), b""):
                writer.write(chunk)
    except OSError as error:
        raise _failure(source, f"could not read {local} ({error})",
                       "check the path and its permissions") from error


def _sha256_of(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(_CHUNK_BYTES), b""):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


def _fetch(source: ArtifactSource, cache_dir: Path, *, max_bytes: int, timeout: float,
           retries: int) -> tuple[Path, str]:
    """Fetch into the cache and return (entry, its sha256)."""
    pin = _checked_pin(source)
    if max_bytes <= 0:
        raise _failure(source, f"artifactMaxBytes={max_bytes} allows nothing", "set artifactMaxBytes above zero")
    local, name = _locate(source)
    entries = cache_dir / "sha256"
    if pin is not None:
        cached = entries / pin / name
        # Entries appear only by an atomic rename of a verified file, but re-hashing is cheap and also
        # catches one edited by hand; a damaged entry is simply replaced by a fresh download below.
        if cached.is_file() and _sha256_of(cached) == pin:
            return cached, pin
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        # Inside the cache, so the final rename never crosses a file system and stays atomic.
        descriptor, temp_name = tempfile.mkstemp(dir=cache_dir, prefix=_PARTIAL_PREFIX)
    except OSError as error:
        raise _failure(source, f"cannot write to the cache {cache_dir} ({error})",
                       "check its permissions and free space, or point the cache elsewhere") from error
    temp = Path(temp_name)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            writer = _CappedHashingWriter(handle, source, max_bytes)
            if local is None:
                _download(source, writer, max_bytes=max_bytes, timeout=timeout, retries=retries)
            else:
                _copy_local(source, local, writer, max_bytes)
        digest = writer.hexdigest
        if pin is not None and digest != pin:
            raise _failure(source, f"the sha256 is {digest} but {source.pin_key} pins {pin}",
                           f"if the artifact was republished on purpose, set {source.pin_key}={digest}; "
                           "otherwise the URL does not serve the artifact you pinned")
        entry = entries / digest / name
        entry.parent.mkdir(parents=True, exist_ok=True)
        # mkstemp makes the file 0600; the image builds copy it with its mode and the app runs as non-root.
        temp.chmod(0o644)
        os.replace(temp, entry)
    except OSError as error:
        temp.unlink(missing_ok=True)
        raise _failure(source, f"cannot write to the cache {cache_dir} ({error})",
                       "check its permissions and free space, or point the cache elsewhere") from error
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return entry, digest


def fetch_artifact(source: ArtifactSource, cache_dir: Path, *, max_bytes: int, timeout: float = 30.0,
                   retries: int = 3) -> Path:
    """Fetch `source` into `cache_dir/sha256/<hex>/<name>` and return that path.

    With a pin whose entry is already cached nothing is fetched. On any failure nothing is left behind.
    """
    entry, _ = _fetch(source, cache_dir, max_bytes=max_bytes, timeout=timeout, retries=retries)
    return entry


def _zip_members(path: Path, source: ArtifactSource, what: str) -> list[zipfile.ZipInfo]:
    # An HTML error page or a login redirect saved under the artifact's name is the usual way to get here.
    not_a_zip = _failure(source, f"{path.name} is not a zip archive, so not {what}",
                         "check that the key points at the artifact itself and not at an error page")
    if not zipfile.is_zipfile(path):
        raise not_a_zip
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.infolist()
    except (zipfile.BadZipFile, OSError) as error:
        raise not_a_zip from error


def validate_war(path: Path, source: ArtifactSource) -> None:
    """Refuse anything but a zip holding WEB-INF/web.xml, so a bad war fails here and not inside Jetty."""
    names = {info.filename for info in _zip_members(path, source, "a war")}
    if WAR_DESCRIPTOR not in names:
        raise _failure(source, f"the archive holds no {WAR_DESCRIPTOR}, so Jetty would not deploy it",
                       "check that the key points at companyNews.war")


def _unsafe_reason(info: zipfile.ZipInfo) -> str | None:
    # Backslashes count as separators too: the archive may have been made on Windows.
    unified = info.filename.replace("\\", "/")
    if unified.startswith("/"):
        return "is an absolute path"
    if PureWindowsPath(info.filename).drive:
        return "names a drive"
    if ".." in unified.split("/"):
        return "climbs out of the folder with '..'"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "is a symbolic link"
    if info.flag_bits & 0x1:
        return "is encrypted"
    return None


def _make_readable(root: Path) -> None:
    """Open up modes: mkdtemp made root 0700, and the nginx image (non-root) is built from a copy of it."""
    root.chmod(0o755)
    for folder, subfolders, files in os.walk(root):
        for name in subfolders:
            os.chmod(os.path.join(folder, name), 0o755)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o644)


def unpack_static(path: Path, source: ArtifactSource, dest: Path, *, max_bytes: int | None = None) -> Path:
    """Unpack static.zip into `dest` (reused when already there) and return `dest/"static"`.

    Every entry is checked before anything is written: no absolute paths, drives, '..' or symlinks, and a
    static/ folder must be present. `max_bytes` caps the total unpacked size (entry sizes are enforced by
    zipfile's CRC check), so a small zip cannot fill the disk.
    """
    members = _zip_members(path, source, "a static archive")
    for info in members:
        reason = _unsafe_reason(info)
        if reason is not None:
            raise _failure(source, f"archive entry {info.filename!r} {reason}; nothing was unpacked",
                           "use an archive whose entries are all plain relative paths")
    has_static = False
    for info in members:
        parts = [part for part in info.filename.replace("\\", "/").split("/") if part not in ("", ".")]
        if parts and parts[0] == STATIC_FOLDER and (len(parts) > 1 or info.is_dir()):
            has_static = True
    if not has_static:
        raise _failure(source, f"the archive holds no {STATIC_FOLDER}/ folder",
                       "check that the key points at static.zip, whose top-level folder is static/")
    unpacked_size = sum(info.file_size for info in members)
    if max_bytes is not None and unpacked_size > max_bytes:
        raise _too_large(source, max_bytes, f"it unpacks to {unpacked_size} bytes")

    ready = dest / STATIC_FOLDER
    if ready.is_dir():
        return ready
    if dest.exists():
        raise _failure(source, f"{dest} exists but holds no {STATIC_FOLDER}/ folder",
                       f"delete {dest} and run again")
    staging: Path | None = None
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        # Unpack beside dest and rename: dest is either complete or absent, even after a crash.
        staging = Path(tempfile.mkdtemp(dir=dest.parent, prefix=_PARTIAL_PREFIX))
        with zipfile.ZipFile(path) as archive:
            archive.extractall(staging)
        _make_readable(staging)
        try:
            staging.rename(dest)
        except OSError:
            if not ready.is_dir():   # a concurrent run that finished first is fine; anything else is not
                raise
    except (OSError, zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as error:
        raise _failure(source, f"unpacking into {dest} failed ({type(error).__name__}: {error})",
                       "check the archive (it may be corrupt) and the free space under the cache") from error
    finally:
        if staging is not None and staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return ready


def prepare_artifacts(war: ArtifactSource, static: ArtifactSource, cache_dir: Path, *, max_bytes: int,
                      timeout: float = 30.0) -> PreparedArtifacts:
    """Fetch and verify the war and the static archive, unpack the latter; raise before anything is deployed.

    `max_bytes` (artifactMaxBytes) caps each download and also the unpacked size of the static archive.
    """
    war_path, war_digest = _fetch(war, cache_dir, max_bytes=max_bytes, timeout=timeout, retries=3)
    validate_war(war_path, war)
    static_zip, static_digest = _fetch(static, cache_dir, max_bytes=max_bytes, timeout=timeout, retries=3)
    # Keyed by the archive's hash, so a rerun with the same archive reuses the folder.
    static_dir = unpack_static(static_zip, static, cache_dir / "unpacked" / static_digest, max_bytes=max_bytes)
    return PreparedArtifacts(war=war_path, war_sha256=war_digest, static_dir=static_dir)


def _tree_digest(sources: dict[str, Path]) -> str:
    """sha256 over every file's place, mode and bytes: equal exactly when a copy of `sources` would be."""
    digest = hashlib.sha256()
    for relative, source in sorted(sources.items()):
        files = [source] if source.is_file() else sorted(path for path in source.rglob("*") if path.is_file())
        for path in files:
            place = relative if path == source else f"{relative}/{path.relative_to(source).as_posix()}"
            digest.update(f"{place}\0{stat.S_IMODE(path.stat().st_mode):o}\0".encode())
            with path.open("rb") as handle:
                for chunk in iter(lambda: handle.read(_CHUNK_BYTES), b""):
                    digest.update(chunk)
            digest.update(b"\0")
    return digest.hexdigest()


def stage_build_context(image_dir: Path, dest: Path, extras: dict[str, Path]) -> Path:
    """Copy an image folder from docker/ and its artifacts into a build context named by its content,
    `<dest>-<digest>`, and return that folder.

    `extras` maps a path inside the context (e.g. "companyNews.war" or "site") to a file or folder. The
    folder under docker/ stays pristine, so a fetched artifact can never be committed by accident. A context
    once staged is never written again: staging the same content reuses it (so `pulumi preview` cannot
    rewrite the folder a running `pulumi up` is building from), and other content gets a folder of its own.
    """
    final = dest.parent / f"{dest.name}-{_tree_digest({'.': image_dir, **extras})[:16]}"
    if final.is_dir():
        return final
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=dest.parent, prefix=_PARTIAL_PREFIX))
    try:
        staging.chmod(0o755)
        shutil.copytree(image_dir, staging, dirs_exist_ok=True)
        for relative, source in extras.items():
            target = staging / relative
            if source.is_dir():
                shutil.copytree(source, target)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
        os.rename(staging, final)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if final.is_dir():      # a concurrent run staged the same content first
            return final
        raise
    return final
