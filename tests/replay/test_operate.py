"""Operating a replayed stack with scripts/operate (make status, logs, backup, restore), as an operator would.

status and logs run against the module's replayed training stack; backup and restore against a stack and
data volume of their own, which they purge and rebuild.
"""
from __future__ import annotations

import subprocess
import sys
import tarfile
import time
import uuid

import pytest
import requests

from tests.program import REPO_ROOT
from tests.replay.stack import ReplayedStack, artifact_overrides

OPERATE = [sys.executable, str(REPO_ROOT / "scripts" / "operate")]
BACKUP_STACK = "test-backup"
ARTICLES = 25


def operate(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*OPERATE, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT)


def status_rows(stack_name: str) -> dict[str, list[str]]:
    """The container table of `make status`: container name -> its columns."""
    finished = operate("status", stack_name)
    assert finished.returncode == 0, finished.stderr
    rows = {}
    for line in finished.stdout.splitlines():
        cells = line.split()
        if len(cells) >= 7 and cells[1].startswith("companynews-"):
            rows[cells[1]] = cells
    return rows


def wait_for_all_healthy(stack, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(c.attrs["State"].get("Health", {}).get("Status") == "healthy" for c in stack.containers()):
            return
        time.sleep(1)
    raise AssertionError(f"the stack's containers were not all healthy within {timeout} s")


def test_status_shows_tiers_roles_and_data(replayed_training):
    replayed_training.wait_until_serving()
    wait_for_all_healthy(replayed_training)
    finished = operate("status", replayed_training.name)
    assert finished.returncode == 0, finished.stderr
    text = finished.stdout
    rows = status_rows(replayed_training.name)
    assert sorted(cells[0] for cells in rows.values()) == ["app", "app", "proxy", "static", "static"], text
    assert all(cells[2] == "healthy" for cells in rows.values()), text
    assert sorted(cells[3] for cells in rows.values() if cells[0] == "app") == ["standby", "writer"], text
    assert f"url:        {replayed_training.url}" in text, text
    assert "free of" in text and "journal:    last write" in text, text


def test_status_shows_the_writer_after_a_failover(replayed_training):
    replayed_training.wait_until_serving()
    old_writer = replayed_training.writer()
    assert status_rows(replayed_training.name)[old_writer.name][3] == "writer"
    old_writer.kill()
    try:
        replayed_training.wait_until_serving(timeout=60)
        new_writer = replayed_training.writer()
        rows = status_rows(replayed_training.name)
        assert rows[new_writer.name][3] == "writer", rows
        assert rows[old_writer.name][2] == "exited" and rows[old_writer.name][3] == "-", rows
    finally:
        old_writer.start()


def test_logs_follow_new_lines_with_the_container_name(replayed_training):
    marker = f"follow-{uuid.uuid4().hex}"
    follower = subprocess.Popen([*OPERATE, "logs", replayed_training.name, "--tier", "proxy"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    try:
        time.sleep(2)
        requests.get(replayed_training.url + f"Read.action?{marker}", timeout=10)
        deadline = time.monotonic() + 20
        seen = ""
        while time.monotonic() < deadline and follower.poll() is None:
            line = follower.stdout.readline()
            if marker in line:
                seen = line
                break
        assert seen.startswith(f"companynews-{replayed_training.name}-proxy"), f"{marker} not followed: {seen!r}"
        assert follower.poll() is None, "logs stopped instead of following"
    finally:
        follower.kill()
        follower.wait(timeout=10)


def test_logs_of_every_tier_name_each_container(replayed_training):
    replayed_training.wait_until_serving()
    # A query string the front door's cache has not seen: the request reaches a static replica.
    requests.get(replayed_training.url + f"styles/company.css?{uuid.uuid4().hex}", timeout=10)
    time.sleep(2.5)  # the static tier's access log is flushed every second
    finished = operate("logs", replayed_training.name, "--no-follow", timeout=60)
    assert finished.returncode == 0, finished.stderr
    names = {line.split(" | ", 1)[0].strip() for line in finished.stdout.splitlines() if " | " in line}
    prefix = f"companynews-{replayed_training.name}-"
    assert prefix + "proxy" in names and names & {prefix + "app-blue-0", prefix + "app-green-0"}, names
    assert any(name.startswith(prefix + "static-") for name in names), names


@pytest.fixture(scope="module")
def backup_stack(docker_client, base_image, standin_war, static_zip):
    replayed = ReplayedStack(BACKUP_STACK, {
        **artifact_overrides(standin_war, static_zip, base_image),
        "httpPort": "18292", "statsPort": "18692", "statsPassword": "backup-stats-password",
        "dockerSubnet": "172.30.92.0/24", "postRatePerMinute": "100000", "postBurst": "10000",
    })
    replayed.down(purge=True)
    replayed.up()
    replayed.wait_until_serving()
    yield replayed
    replayed.down(purge=True)


def test_backup_purge_restore_shows_every_article(backup_stack, tmp_path):
    titles = [f"kept-{number}-{uuid.uuid4().hex[:6]}" for number in range(ARTICLES)]
    for title in titles:
        assert backup_stack.post(title).status_code == 302
    finished = operate("backup", BACKUP_STACK, "--dir", str(tmp_path))
    assert finished.returncode == 0, finished.stderr
    assert "writers frozen" in finished.stdout, finished.stdout    # taken while the writer was running
    (archive,) = tmp_path.glob(f"{BACKUP_STACK}-*.tar.gz")
    checksum = (tmp_path / (archive.name + ".sha256")).read_text().split()
    assert checksum[1] == archive.name and len(checksum[0]) == 64
    with tarfile.open(archive) as packed:
        assert any(name.endswith(".journal") for name in packed.getnames()), packed.getnames()

    backup_stack.down(purge=True)
    finished = operate("restore", BACKUP_STACK, str(archive))
    assert finished.returncode == 0, finished.stderr
    backup_stack.up()
    backup_stack.wait_until_serving()
    listed = backup_stack.titles_listed()
    missing = [title for title in titles if title not in listed]
    assert not missing, f"{len(missing)} of {ARTICLES} articles not restored: {missing[:5]}"

    # A volume with articles is not overwritten unless told.
    refused = operate("restore", BACKUP_STACK, str(archive))
    assert refused.returncode == 1 and "not empty" in refused.stderr, refused.stderr
    backup_stack.post("after-restore")
    forced = operate("restore", BACKUP_STACK, str(archive), "--force")
    assert forced.returncode == 0, forced.stderr
    backup_stack.wait_until_serving()
    listed = backup_stack.titles_listed()
    assert "after-restore" not in listed and all(title in listed for title in titles)


def test_restore_refuses_a_damaged_archive(tmp_path):
    archive = tmp_path / "damaged.tar.gz"
    archive.write_bytes(b"not a backup")
    (tmp_path / "damaged.tar.gz.sha256").write_text(f"{'0' * 64}  damaged.tar.gz\n")
    finished = operate("restore", BACKUP_STACK, str(archive))
    assert finished.returncode == 1 and "SHA-256 differs" in finished.stderr, finished.stderr
