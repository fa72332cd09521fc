"""Build what the Docker-backed tests run: the stand-in companyNews.war, a fixture static.zip, and the tier
images from docker/<tier>, staged exactly as the Pulumi program stages them.

Used by the container tests, the replay tests and the benchmarks; conftest.py wraps these in fixtures.
"""
from __future__ import annotations

import io
import os
import tarfile
import time
import uuid
import zipfile
from pathlib import Path

import docker
import docker.errors
from docker.models.images import Image

from components.artifacts import stage_build_context

REPO_ROOT = Path(__file__).resolve().parent.parent
DOCKER_DIR = REPO_ROOT / "docker"
FIXTURES_DIR = Path(__file__).resolve().parent / "fixtures"
STANDIN_DIR = FIXTURES_DIR / "standin"
# Holds static/, laid out as the real static.zip is: static/styles/..., static/images/...
STATIC_FIXTURE_DIR = FIXTURES_DIR / "static"

WAR_NAME = "companyNews.war"
STANDIN_WAR_PATH = f"/out/{WAR_NAME}"
STANDIN_BUILD_TAG = "companynews-test-standin-build:latest"
APP_IMAGE_TAG = "companynews-test-app:latest"
STATIC_IMAGE_TAG = "companynews-test-static:latest"
# Containers created here carry this prefix, like every container the tests start.
TEST_NAME_PREFIX = "cn-test-"

# The earliest date a zip entry can hold; a fixed date makes the archive byte-for-byte repeatable.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


class ImageBuildError(RuntimeError):
    """An image build failed; the message ends with the tail of the build log."""


def build_image(client: docker.DockerClient, context: Path, tag: str, buildargs: dict[str, str]) -> Image:
    """Build `context` (its Dockerfile) as `tag` with the legacy builder; raise ImageBuildError with the log."""
    try:
        image, _log = client.images.build(
            path=str(context), tag=tag, buildargs=buildargs, rm=True, forcerm=True, pull=False
        )
    except docker.errors.BuildError as error:
        lines = [chunk.get("stream") or chunk.get("error") or "" for chunk in error.build_log]
        tail = "".join(lines)[-4000:]
        raise ImageBuildError(f"building {context} as {tag} failed: {error.msg}\n--- build log tail ---\n{tail}") from None
    return image


def build_standin_war(client: docker.DockerClient, base_image: str, dest_dir: Path) -> Path:
    """Compile the stand-in app from tests/fixtures/standin and return the path of companyNews.war in dest_dir."""
    build_image(client, STANDIN_DIR, STANDIN_BUILD_TAG, {"BASE_IMAGE": base_image})
    # A created (never started) container is enough to copy a file out of an image.
    container = client.containers.create(STANDIN_BUILD_TAG, command=["true"], name=_unique_name("standin-war"))
    try:
        stream, _stat = container.get_archive(STANDIN_WAR_PATH)
        archive = io.BytesIO(b"".join(stream))
    finally:
        container.remove(force=True)
    with tarfile.open(fileobj=archive) as tar:
        member = tar.getmember(WAR_NAME)
        extracted = tar.extractfile(member)
        if extracted is None:
            raise ImageBuildError(f"{STANDIN_WAR_PATH} in {STANDIN_BUILD_TAG} is not a regular file")
        war = dest_dir / WAR_NAME
        war.write_bytes(extracted.read())
    return war


def build_static_zip(dest: Path, source: Path = STATIC_FIXTURE_DIR) -> Path:
    """Zip the tree under `source` (which holds static/) into `dest`, deterministically; return `dest`."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(source.rglob("*")):
            name = path.relative_to(source).as_posix()
            if path.is_dir():
                info = zipfile.ZipInfo(name + "/", _ZIP_EPOCH)
                info.external_attr = (0o40755 << 16) | 0x10  # unix mode, and the MS-DOS directory flag
                archive.writestr(info, b"")
            else:
                info = zipfile.ZipInfo(name, _ZIP_EPOCH)
                info.external_attr = 0o100644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes())
    return dest


def unpack_static_site(static_zip: Path, dest: Path) -> Path:
    """Unpack `static_zip` into `dest` and return its static/ folder: the site the static tier serves."""
    with zipfile.ZipFile(static_zip) as archive:
        archive.extractall(dest)
        # extractall stamps files with the current time; keep the archive's, so Last-Modified is stable.
        for info in archive.infolist():
            stamp = time.mktime(info.date_time + (0, 0, -1))
            os.utime(dest / info.filename, (stamp, stamp))
    site = dest / "static"
    if not site.is_dir():
        raise ValueError(f"{static_zip} has no static/ folder at its top; the static tier serves that folder")
    return site


def build_tier_image(
    client: docker.DockerClient, tier: str, base_image: str, extras: dict[str, Path], workdir: Path, tag: str
) -> Image:
    """Stage docker/<tier> with `extras` (as the Pulumi program does) under `workdir` and build it as `tag`."""
    context = stage_build_context(DOCKER_DIR / tier, workdir / f"{tier}-context", extras)
    return build_image(client, context, tag, {"BASE_IMAGE": base_image})


def build_app_image(
    client: docker.DockerClient, base_image: str, war: Path, workdir: Path, tag: str = APP_IMAGE_TAG
) -> Image:
    """The app tier (Jetty 9 running `war` as the root context)."""
    return build_tier_image(client, "app", base_image, {WAR_NAME: war}, workdir, tag)


def build_static_image(
    client: docker.DockerClient, base_image: str, static_zip: Path, workdir: Path, tag: str = STATIC_IMAGE_TAG
) -> Image:
    """The static tier (nginx serving the archive's static/ folder)."""
    site = unpack_static_site(static_zip, workdir / "static-unpacked")
    return build_tier_image(client, "static", base_image, {"site": site}, workdir, tag)


def _unique_name(purpose: str) -> str:
    return f"{TEST_NAME_PREFIX}{purpose}-{uuid.uuid4().hex[:8]}"
