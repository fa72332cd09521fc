"""Fixtures shared by every test folder: the Docker engine, the offline base image, image builds.

With CI=true a Docker-backed test never skips: a missing engine or base image fails the run.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

IN_CI = os.environ.get("CI", "").lower() == "true"
# scripts/base-image builds this tag; real users build on debian:bookworm-slim instead.
BASE_IMAGE = os.environ.get("COMPANYNEWS_BASE_IMAGE", "companynews-base:bookworm")


def _docker_unavailable(reason: str):
    if IN_CI:
        pytest.fail(f"CI=true but {reason}: .ci/run must provide it", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def docker_client():
    try:
        import docker

        client = docker.from_env(timeout=300)
        client.ping()
    except Exception as error:  # any failure to reach the engine means the same thing here
        _docker_unavailable(f"no Docker engine answers ({error})")
    return client


@pytest.fixture(scope="session")
def base_image(docker_client) -> str:
    import docker.errors

    try:
        docker_client.images.get(BASE_IMAGE)
    except docker.errors.ImageNotFound:
        _docker_unavailable(f"base image {BASE_IMAGE} is missing (run scripts/base-image)")
    return BASE_IMAGE


# --- artifacts and images (tests/images.py builds them; each is built once per session) ---------------


@pytest.fixture(scope="session")
def standin_war(docker_client, base_image, tmp_path_factory) -> Path:
    """companyNews.war compiled from tests/fixtures/standin: the real war cannot be fetched offline."""
    from tests import images

    return images.build_standin_war(docker_client, base_image, tmp_path_factory.mktemp("standin-war"))


@pytest.fixture(scope="session")
def static_zip(tmp_path_factory) -> Path:
    """static.zip built from tests/fixtures/static, laid out as the real archive (static/ at its top)."""
    from tests import images

    return images.build_static_zip(tmp_path_factory.mktemp("static-zip") / "static.zip")


@pytest.fixture(scope="session")
def static_image(docker_client, base_image, static_zip, tmp_path_factory) -> str:
    """Tag of docker/static built with the fixture static.zip."""
    from tests import images

    images.build_static_image(docker_client, base_image, static_zip, tmp_path_factory.mktemp("static-image"))
    return images.STATIC_IMAGE_TAG


@pytest.fixture(scope="session")
def app_image(docker_client, base_image, standin_war, tmp_path_factory) -> str:
    """Tag of docker/app built with the stand-in war."""
    from tests import images

    images.build_app_image(docker_client, base_image, standin_war, tmp_path_factory.mktemp("app-image"))
    return images.APP_IMAGE_TAG
