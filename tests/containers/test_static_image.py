"""The static tier image (docker/static) on real Docker: it serves the archive's files byte for byte,
nothing else, as uid 10002, hardened the way the Pulumi program runs it."""
from __future__ import annotations

import http.client
import zipfile
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
    health_status,
    process_uids,
    published_url,
    wait_for,
    wait_for_status,
)


@pytest.fixture(scope="module")
def static_server(docker_client, static_image):
    """One static container, run as the Pulumi program runs it; yields (container, base URL)."""
    resources = DockerResources(docker_client)
    try:
        container = resources.run(static_image, "static", healthcheck=FAST_HEALTHCHECK, **HARDENING)
        url = published_url(container, constants.STATIC_PORT)
        wait_for_status(url + "healthz", 200, timeout=30)
        yield container, url
    finally:
        resources.remove_all()


def archive_files(static_zip) -> dict[str, bytes]:
    """Path under the site root -> bytes, for every file in the archive's static/ folder."""
    with zipfile.ZipFile(static_zip) as archive:
        return {
            info.filename.removeprefix("static/"): archive.read(info)
            for info in archive.infolist()
            if info.filename.startswith("static/") and not info.is_dir()
        }


def raw_status(url: str, path: str) -> int:
    """Status of GET `path` sent exactly as written (no client-side normalisation of the path)."""
    address = urlparse(url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=REQUEST_TIMEOUT)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    finally:
        connection.close()


def test_static_bytes_equal_archive(static_server, static_zip):
    _container, url = static_server
    files = archive_files(static_zip)
    assert {"styles/company.css", "images/logo.png"} <= set(files), f"fixture archive holds {sorted(files)}"
    for path, expected in files.items():
        response = requests.get(url + path, timeout=REQUEST_TIMEOUT)
        assert response.status_code == 200, f"/{path} answered {response.status_code}"
        assert response.content == expected, f"/{path} differs from the archive's static/{path}"


def test_assets_have_their_content_types(static_server):
    _container, url = static_server
    css = requests.get(url + "styles/company.css", timeout=REQUEST_TIMEOUT)
    png = requests.get(url + "images/logo.png", timeout=REQUEST_TIMEOUT)
    assert css.headers["Content-Type"].startswith("text/css"), css.headers["Content-Type"]
    assert png.headers["Content-Type"] == "image/png", png.headers["Content-Type"]


@pytest.mark.parametrize("path", [
    "/",
    "/styles/",
    "/images/",
    "/styles/missing.css",
    "/static/styles/company.css",
    "/index.html",
    "/etc/passwd",
    "/nginx.conf",
    "/Read.action",
])
def test_anything_not_in_the_archive_is_404(static_server, path):
    _container, url = static_server
    status = raw_status(url, path)
    assert status == 404, f"GET {path} answered {status}, want 404: only the archive's files exist"


def test_no_directory_listing_or_version_in_answers(static_server):
    _container, url = static_server
    response = requests.get(url + "styles/", timeout=REQUEST_TIMEOUT)
    assert "Index of" not in response.text
    assert response.headers.get("Server") == "nginx", f"Server header says {response.headers.get('Server')!r}"
    assert "nginx/" not in response.text, "the error page shows nginx's version"


def test_assets_are_cacheable_and_revalidate(static_server):
    _container, url = static_server
    first = requests.get(url + "styles/company.css", timeout=REQUEST_TIMEOUT)
    assert "max-age=3600" in first.headers.get("Cache-Control", ""), first.headers
    assert first.headers.get("ETag") and first.headers.get("Last-Modified"), first.headers
    again = requests.get(url + "styles/company.css", headers={"If-None-Match": first.headers["ETag"]},
                         timeout=REQUEST_TIMEOUT)
    assert again.status_code == 304, f"a revalidation with the ETag answered {again.status_code}"


def test_runs_as_static_uid_not_root(static_server, docker_client):
    container, _url = static_server
    assert process_uids(container, 1) == [constants.STATIC_UID] * 4, "nginx's master process runs as"
    assert exec_output(container, ["id", "-u"]).strip() == str(constants.STATIC_UID)
    top = docker_client.api.top(container.id, ps_args="-o uid,pid,args")
    uids = {int(process[0]) for process in top["Processes"]}
    assert uids == {constants.STATIC_UID}, f"processes of {container.name} run as uids {uids}"


def test_serves_with_read_only_root_no_capabilities_and_tmpfs(static_server):
    container, url = static_server
    host_config = container.attrs["HostConfig"]
    assert host_config["ReadonlyRootfs"] is True
    assert host_config["CapDrop"] == ["ALL"]
    assert "no-new-privileges:true" in host_config["SecurityOpt"]
    assert "/tmp" in host_config["Tmpfs"]
    assert container.exec_run(["touch", "/srv/static/written"]).exit_code != 0, "the site is writable"
    assert requests.get(url + "images/logo.png", timeout=REQUEST_TIMEOUT).status_code == 200


def test_access_log_goes_to_stdout(static_server):
    container, url = static_server
    requests.get(url + "images/logo.png?access-log-probe", timeout=REQUEST_TIMEOUT)

    def logged() -> bool:
        return b"GET /images/logo.png?access-log-probe" in container.logs(stdout=True, stderr=False)

    wait_for(logged, 10, "the request in the container's stdout")


def test_healthcheck_reports_healthy(static_server, docker_client, static_image):
    container, _url = static_server
    healthcheck = docker_client.images.get(static_image).attrs["Config"]["Healthcheck"]
    assert healthcheck["Test"] == ["CMD", "/usr/local/bin/healthcheck"]
    assert container.exec_run(["/usr/local/bin/healthcheck"]).exit_code == 0
    wait_for(lambda: health_status(container) == "healthy", 30, f"{container.name} healthy")
