"""scripts/operate without Docker: a production stack's status skips cleanly without AWS access."""
from __future__ import annotations

import os
import subprocess
import sys

from tests.program import REPO_ROOT

OPERATE = [sys.executable, str(REPO_ROOT / "scripts" / "operate")]


def test_production_status_skips_cleanly_without_aws_credentials(tmp_path):
    environment = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    # No profile, no credentials file, no instance metadata to fall back on within the test.
    environment.update(AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
                       AWS_EC2_METADATA_DISABLED="true", DOCKER_HOST="unix:///nonexistent.sock")
    finished = subprocess.run([*OPERATE, "status", "production"], capture_output=True, text=True, timeout=60,
                              env=environment, cwd=REPO_ROOT)
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.startswith("stack production (aws): skipped, "), finished.stdout


def test_production_logs_and_backups_point_to_aws_instead():
    finished = subprocess.run([*OPERATE, "backup", "production"], capture_output=True, text=True, timeout=60,
                              cwd=REPO_ROOT)
    assert finished.returncode == 1 and "AWS Backup" in finished.stderr, finished.stderr


def test_restore_names_a_missing_file(tmp_path):
    finished = subprocess.run([*OPERATE, "restore", "training", str(tmp_path / "missing.tar.gz")],
                              capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
    assert finished.returncode == 1 and "missing.tar.gz: no such file" in finished.stderr, finished.stderr
