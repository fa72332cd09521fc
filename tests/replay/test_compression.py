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
    for path, fresh in (("Read.action", {"cn_fresh": "1"}), ("Read.action", None), ("", None),
                        ("styles/company.css", None), ("styles/company.css", None)):
        plain = raw_get(replayed_training.url + path, IDENTITY, fresh)
        packed = raw_get(replayed_training.url + path, GZIP, fresh)
        assert plain.status_code == packed.status_code == 200, (path, plain.status_code, packed.status_code)
        assert "Content-Encoding" not in plain.headers, f"/{path}: {plain.headers}"
        assert packed.headers.get("Content-Encoding") == "gzip", f"/{path} not gzipped: {packed.headers}"
        assert "Accept-Encoding" in packed.headers.get("Vary", ""), packed.headers
        unpacked = gzip.decompress(packed.wire)
        if path == "Read.action" and fresh is None:
            # Served from the micro-cache: both copies are the cached page.
            assert packed.headers.get("X-Cache-Status") in ("HIT", "MISS", "EXPIRED", "UPDATING", "STALE")
        assert unpacked == plain.wire, f"/{path}: the gzipped bytes decompress to something else"
        assert len(packed.wire) < len(plain.wire), f"/{path}: gzip did not make it smaller"
        if path.startswith("styles/"):
            assert plain.wire == css, "the stylesheet differs from the archive"


def test_images_are_never_compressed(replayed_training, static_zip):
    replayed_training.wait_until_serving()
    with zipfile.ZipFile(static_zip) as archive:
        logo = archive.read("static/images/logo.png")
    for _ in range(2):  # from the static tier, then from the front door's cache
        response = raw_get(replayed_training.url + "images/logo.png", GZIP)
        assert response.status_code == 200
        assert "Content-Encoding" not in response.headers, response.headers
        assert response.wire == logo, "the image's bytes differ from the archive"
