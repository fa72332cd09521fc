"""scripts/preview-preflight: the pull-request preview stops with a clear message, creating nothing, when the
production stack does not exist yet; a fake `aws` on PATH stands for the state bucket."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.program import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "preview-preflight"
STACK_FILE = "config:\n  companynews:platform: aws\n"
SALT = "encryptionsalt: v1:abc:v1:def:ghi\n"


def fake_aws(folder: Path, keys: list[str], exit_code: int = 0) -> Path:
    """An `aws` that records its arguments and lists `keys` as the bucket's objects."""
    listing = '{"Contents": [' + ", ".join(f'{{"Key": "{key}"}}' for key in keys) + "]}"
    script = folder / "aws"
    script.write_text(f"#!/bin/sh\necho \"$@\" > {folder}/aws-args\necho '{listing}'\nexit {exit_code}\n")
    script.chmod(0o755)
    return folder


def preflight(tmp_path: Path, backend: str, stack_text: str, keys: list[str], exit_code: int = 0):
    stack_file = tmp_path / "Pulumi.production.yaml"
    stack_file.write_text(stack_text)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake_aws(bin_dir, keys, exit_code)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    return subprocess.run([sys.executable, str(SCRIPT), "--backend-url", backend, "--stack-file", str(stack_file)],
                          capture_output=True, text=True, env=env, timeout=30)


def test_an_existing_stack_passes_and_the_bucket_region_is_used(tmp_path):
    done = preflight(tmp_path, "s3://acme-state/companynews?region=eu-west-1", STACK_FILE + SALT,
                     ["companynews/.pulumi/stacks/companynews/production.json"])
    assert done.returncode == 0, done.stderr
    args = (tmp_path / "bin" / "aws-args").read_text().split()
    assert args[args.index("--bucket") + 1] == "acme-state" and args[args.index("--region") + 1] == "eu-west-1", args
    assert args[args.index("--prefix") + 1] == "companynews/.pulumi/stacks/companynews/production.json", args


def test_a_compressed_state_file_counts(tmp_path):
    done = preflight(tmp_path, "s3://acme-state", STACK_FILE + SALT, [".pulumi/stacks/companynews/production.json.gz"])
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("backend, stack_text, keys, words", [
    ("s3://acme-state/companynews", STACK_FILE + SALT, [], "stack 'production' does not exist"),
    ("s3://acme-state/companynews", STACK_FILE, ["companynews/.pulumi/stacks/companynews/production.json"],
     "no encryptionsalt or secretsprovider"),
    ("https://api.pulumi.com", STACK_FILE + SALT, [], "must be an s3://"),
])
def test_a_missing_stack_stops_the_preview_with_a_clear_message(tmp_path, backend, stack_text, keys, words):
    done = preflight(tmp_path, backend, stack_text, keys)
    assert done.returncode == 2 and words in done.stderr and "::error" in done.stderr, done.stderr


def test_an_unreadable_bucket_names_the_region_query(tmp_path):
    done = preflight(tmp_path, "s3://acme-state/companynews", STACK_FILE + SALT, [], exit_code=255)
    assert done.returncode == 2 and "?region=" in done.stderr, done.stderr
