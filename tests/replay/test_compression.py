"""Compression at the front door: text leaves gzipped for clients that ask, images never, and the bytes a
client gets after decompression are the bytes an uncompressed client gets."""
from __future__ import annotations

import gzip
import time
import zipfile

import requests

GZIP = {"Accept-Encoding": "gzip"}
IDENTITY = {"Accept-Encoding": "identity"}


def raw_get(url: str, headers: dict, cookies: dict | None = None) -> requests.Response:
    """GET without requests' automatic decompression: .raw keeps the bytes as they crossed the wire."""
    response = requests.get(url, headers=headers, cookies=cookies, timeout=10, stream=True)
    response.wire = response.raw.read(decode_content=False)
    return response


def test_pages_and_styles_are_gzipped_and_identical_after_decompression(replayed_training, static_zip):
    replayed_training.wait_until_serving()
    for number in range(30):
        answer = replayed_training.post(f"compressible article {number}", "the same words again and again " * 20)
        assert answer.status_code == 302, answer.status_code
    time.sleep(2)  # the micro-cache's copy from before the posts (the smoke check's) has expired
    with zipfile.ZipFile(static_zip) as archive:
        css = archive.read("static/styles/company.css")
    for path, fresh in (("Read.action", {"cn_fresh": "1"}), ("", {"cn_fresh": "1"}), ("styles/company.css", None)):
        plain = raw_get(replayed_training.url + path, IDENTITY, fresh)
        packed = raw_get(replayed_training.url + path, GZIP, fresh)
        assert_same_after_decompression(path, plain, packed)
        if path.startswith("styles/"):
            assert plain.wire == css, "the stylesheet differs from the archive"
    # The micro-cache keeps working: two readers of one cached copy, one with gzip and one without.
    for _ in range(40):
        plain = raw_get(replayed_training.url + "Read.action", IDENTITY)
        packed = raw_get(replayed_training.url + "Read.action", GZIP)
        if plain.headers.get("X-Cache-Status") == packed.headers.get("X-Cache-Status") == "HIT" \
                and b"compressible article 29" in plain.wire:
            break
        time.sleep(0.25)
    else:
        raise AssertionError(f"no two cache hits of the page with the posts: {plain.headers}, {packed.headers}")
    assert_same_after_decompression("Read.action (cached)", plain, packed)


def test_a_client_refusing_gzip_gets_the_stylesheet_plain(replayed_training, static_zip):
    # "gzip;q=0" names gzip only to refuse it (RFC 9110, 12.5.3); the cache keeps the plain and the gzipped copy
    # apart by what the client takes, so neither may be served to a client that asked for the other.
    replayed_training.wait_until_serving()
    with zipfile.ZipFile(static_zip) as archive:
        css = archive.read("static/styles/company.css")
    url = replayed_training.url + "styles/company.css"
    for _ in range(2):  # from the static tier, then from the front door's cache
        assert raw_get(url, GZIP).headers.get("Content-Encoding") == "gzip"
        for refusing in ("gzip;q=0", "gzip; q=0.0, identity", "deflate"):
            plain = raw_get(url, {"Accept-Encoding": refusing})
            assert plain.status_code == 200 and "Content-Encoding" not in plain.headers, (refusing, plain.headers)
            assert plain.wire == css, f"{refusing!r}: the stylesheet differs from the archive"
        taking = raw_get(url, {"Accept-Encoding": "br;q=1.0, gzip;q=0.5"})
        assert taking.headers.get("Content-Encoding") == "gzip", taking.headers
        assert gzip.decompress(taking.wire) == css


def assert_same_after_decompression(path: str, plain: requests.Response, packed: requests.Response) -> None:
    assert plain.status_code == packed.status_code == 200, (path, plain.status_code, packed.status_code)
    assert "Content-Encoding" not in plain.headers, f"/{path}: {plain.headers}"
    assert packed.headers.get("Content-Encoding") == "gzip", f"/{path} not gzipped: {packed.headers}"
    assert "Accept-Encoding" in packed.headers.get("Vary", ""), packed.headers
    assert gzip.decompress(packed.wire) == plain.wire, f"/{path}: the gzipped bytes decompress to something else"
    assert len(packed.wire) < len(plain.wire), f"/{path}: gzip did not make it smaller"


def test_images_are_never_compressed(replayed_training, static_zip):
    replayed_training.wait_until_serving()
    with zipfile.ZipFile(static_zip) as archive:
        images = {name.removeprefix("static/"): archive.read(name) for name in archive.namelist()
                  if name.startswith("static/images/") and not name.endswith("/")}
    # Larger than gzip's minimum length, so only the type can keep it from being compressed.
    assert max(len(data) for data in images.values()) > 1024, {name: len(data) for name, data in images.items()}
    for path, data in images.items():
        for _ in range(2):  # from the static tier, then from the front door's cache
            response = raw_get(replayed_training.url + path, GZIP)
            assert response.status_code == 200, (path, response.status_code)
            assert "Content-Encoding" not in response.headers, f"/{path}: {response.headers}"
            assert response.wire == data, f"/{path}: the image's bytes differ from the archive"
