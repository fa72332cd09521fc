"""scripts/stack (make up, preview, down, purge) on a fresh checkout, with a fake `pulumi` and `docker` on PATH
that record their arguments, standard input and the files the real CLI would write (the real CLI cannot be
installed here), and its install path with the download pointed at a local script."""
from __future__ import annotations

import importlib.machinery
import importlib.util
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.program import REPO_ROOT

SDK_VERSION = __import__("pulumi._version", fromlist=["version"]).version

# Behaves as much like the CLI as scripts/stack relies on: `stack select --create` writes the stack's
# encryption salt into Pulumi.<stack>.yaml of its working directory, `config set` writes there too (a secret
# read from standard input when no value argument is given), `config get` reads it back.
FAKE_PULUMI = r'''#!{python}
import json, os, sys
from pathlib import Path
import yaml
args = sys.argv[1:]
stdin = "" if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps({{"argv": args, "cwd": os.getcwd(), "stdin": stdin,
                          "env": {{k: v for k, v in os.environ.items() if k.startswith(("PULUMI_", "DOCKER_"))}}}}) + "\n")
if args[:1] == ["version"]:
    print("v{version}"); sys.exit(0)
stack = args[args.index("--stack") + 1] if "--stack" in args else (args[3] if args[:3] == ["stack", "select", "--create"] else "training")
stack_file = Path.cwd() / f"Pulumi.{{stack}}.yaml"
settings = yaml.safe_load(stack_file.read_text()) if stack_file.exists() else {{}}
settings = settings or {{}}
if args[:2] == ["stack", "select"]:
    settings.setdefault("encryptionsalt", "v1:fake-salt")
elif args[:2] == ["config", "set"]:
    rest = [a for a in args[2:] if not a.startswith("--") and a != stack]
    key, value = rest[0], (rest[1] if len(rest) > 1 else stdin)
    settings.setdefault("config", {{}})[key] = {{"secure": "v1:" + value[::-1]}} if "--secret" in args else value
elif args[:2] == ["config", "get"]:
    value = (settings.get("config") or {{}}).get(args[2])
    if value is None:
        sys.exit(1)
    print(value["secure"][3:][::-1] if isinstance(value, dict) else str(value).lower() if isinstance(value, bool) else value)
elif args[:2] == ["stack", "output"]:
    print("{{}}")
stack_file.write_text(yaml.safe_dump(settings))
'''

FAKE_DOCKER = r'''#!/bin/sh
echo "docker $*" >> "$FAKE_LOG.docker"
case "$1" in
  info) exit 0 ;;
  context) echo "${FAKE_DOCKER_CONTEXT_HOST:-unix:///var/run/docker.sock}" ;;
  volume) exit 0 ;;
  pull) exit 0 ;;
esac
'''


@pytest.fixture
def fresh_checkout(tmp_path):
    """The tracked files of this tree, committed into a new repository: what `git clone` would give."""
    checkout = tmp_path / "checkout"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, text=True,
                             check=True).stdout.split("\0")
    for name in filter(None, tracked):
        source = REPO_ROOT / name
        if source.is_file():
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, checkout / name)
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid"]
    subprocess.run(git + ["init", "-q"], cwd=checkout, check=True)
    subprocess.run(git + ["add", "-A"], cwd=checkout, check=True)
    subprocess.run(git + ["commit", "-qm", "fresh"], cwd=checkout, check=True)
    return checkout


@pytest.fixture
def fake_tools(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pulumi").write_text(FAKE_PULUMI.format(python=sys.executable, version=SDK_VERSION))
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    for tool in ("pulumi", "docker"):
        (bin_dir / tool).chmod(0o755)
    return bin_dir


def run_stack(checkout: Path, bin_dir: Path, *args: str, **env: str) -> tuple[subprocess.CompletedProcess, list]:
    log = bin_dir.parent / "pulumi.log"
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("PULUMI_", "DOCKER_"))}
    environment.update(PATH=f"{bin_dir}{os.pathsep}{environment['PATH']}", FAKE_LOG=str(log), **env)
    finished = subprocess.run([sys.executable, str(checkout / "scripts" / "stack"), *args], cwd=checkout,
                              env=environment, capture_output=True, text=True, timeout=120)
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return finished, calls


def git_status(checkout: Path) -> str:
    return subprocess.run(["git", "status", "--porcelain", "--ignored=no"], cwd=checkout, capture_output=True,
                          text=True, check=True).stdout


def test_make_up_writes_no_tracked_file_and_no_secret_on_a_command_line(fresh_checkout, fake_tools):
    finished, calls = run_stack(fresh_checkout, fake_tools, "up")
    assert finished.returncode == 0, finished.stderr
    assert git_status(fresh_checkout) == "", f"make up changed the checkout:\n{git_status(fresh_checkout)}"
    (secret_set,) = [call for call in calls if call["argv"][:2] == ["config", "set"]]
    password = secret_set["stdin"]
    assert len(password) >= 12 and "--secret" in secret_set["argv"], secret_set
    for call in calls:
        assert not any(password in arg for arg in call["argv"]), f"the secret is on a command line: {call['argv']}"
        if call["argv"] == ["version"]:
            continue    # PulumiCommand's version check, which writes nothing
        assert Path(call["cwd"]).resolve().is_relative_to((fresh_checkout / ".pulumi-state").resolve()), (
            f"pulumi ran in {call['cwd']}, where it would write a stack file git sees")
        assert call["env"]["PULUMI_BACKEND_URL"] == f"file://{fresh_checkout}/.pulumi-state"
        assert call["env"]["PULUMI_CONFIG_PASSPHRASE_FILE"] == str(fresh_checkout / ".pulumi-state" / "passphrase")
    stack_file = fresh_checkout / ".pulumi-state" / "project" / "Pulumi.training.yaml"
    assert "encryptionsalt" in stack_file.read_text() and "appReplicas: 2" in stack_file.read_text()
    passphrase = fresh_checkout / ".pulumi-state" / "passphrase"
    assert stat.S_IMODE(passphrase.stat().st_mode) == 0o600
    up = [call["argv"] for call in calls if call["argv"][:1] == ["up"]]
    assert up == [["up", "--stack", "training", "--yes", "--refresh", "--non-interactive"]], up
    docker_calls = (fake_tools.parent / "pulumi.log.docker").read_text()
    assert "docker pull --quiet debian:bookworm-slim" in docker_calls, "make up must fetch the newest base image"

    again, calls_again = run_stack(fresh_checkout, fake_tools, "up")
    assert again.returncode == 0 and git_status(fresh_checkout) == ""
    assert [c for c in calls_again[len(calls):] if c["argv"][:2] == ["config", "set"]] == [], (
        "a second make up must keep the stack's password")


def test_make_preview_works_from_a_fresh_checkout(fresh_checkout, fake_tools):
    finished, calls = run_stack(fresh_checkout, fake_tools, "preview")
    assert finished.returncode == 0, finished.stderr
    assert [c["argv"][0] for c in calls if c["argv"][0] in ("preview", "up")] == ["preview"]
    assert git_status(fresh_checkout) == ""


def test_make_down_keeps_the_data_unless_purge_is_set_at_that_moment(fresh_checkout, fake_tools):
    docker_log = fake_tools.parent / "pulumi.log.docker"
    run_stack(fresh_checkout, fake_tools, "up")
    finished, _ = run_stack(fresh_checkout, fake_tools, "down")
    assert finished.returncode == 0, finished.stderr
    assert "volume rm" not in docker_log.read_text(), "make down deleted the data"
    run_stack(fresh_checkout, fake_tools, "pulumi", "config", "set", "companynews:purgeDataOnDestroy", "true",
              "--stack", "training")
    finished, _ = run_stack(fresh_checkout, fake_tools, "down")
    assert "docker volume rm companynews-training-data" in docker_log.read_text(), finished.stderr
    assert git_status(fresh_checkout) == ""


def test_purge_asks_unless_told_yes(fresh_checkout, fake_tools):
    finished, calls = run_stack(fresh_checkout, fake_tools, "purge")
    assert finished.returncode == 1 and "--yes" in finished.stderr
    assert not [c for c in calls if c["argv"][:1] == ["destroy"]], "purge destroyed without being told"
    finished, calls = run_stack(fresh_checkout, fake_tools, "purge", "--yes")
    assert finished.returncode == 0 and [c for c in calls if c["argv"][:1] == ["destroy"]]


def test_docker_context_reaches_the_provider(fresh_checkout, fake_tools):
    host = "unix:///home/someone/.colima/default/docker.sock"
    finished, calls = run_stack(fresh_checkout, fake_tools, "up", FAKE_DOCKER_CONTEXT_HOST=host)
    assert finished.returncode == 0, finished.stderr
    (up,) = [call for call in calls if call["argv"][:1] == ["up"]]
    assert up["env"].get("DOCKER_HOST") == host, "the provider would not find the context's engine"


def load_stack_script():
    loader = importlib.machinery.SourceFileLoader("stack_script", str(REPO_ROOT / "scripts" / "stack"))
    spec = importlib.util.spec_from_loader("stack_script", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


class LocalInstallScript(urllib.request.BaseHandler):
    """Answers https://get.pulumi.com/install.sh with a local script that installs a fake CLI of the asked
    version under --install-root, as the real one installs into <root>/bin."""

    requested: list[str] = []
    handler_order = 100     # before urllib's own HTTPSHandler


    def https_open(self, request):
        self.requested.append(request.full_url)
        script = (f"#!/bin/sh\nset -e\nwhile [ $# -gt 0 ]; do case $1 in --install-root) root=$2; shift;; "
                  f"--version) version=$2; shift;; esac; shift; done\nmkdir -p \"$root/bin\"\n"
                  f"printf '#!/bin/sh\\necho v%s\\n' \"$version\" > \"$root/bin/pulumi\"\n"
                  f"chmod +x \"$root/bin/pulumi\"\n").encode()
        response = urllib.response.addinfourl(io.BytesIO(script), {}, request.full_url, 200)
        response.msg = "OK"
        return response


def test_missing_cli_is_installed_into_the_project_at_the_sdk_version(tmp_path, monkeypatch):
    stack_script = load_stack_script()
    monkeypatch.setenv("PATH", "/usr/bin:/bin")     # no pulumi there
    assert shutil.which("pulumi") is None
    handler = LocalInstallScript()
    monkeypatch.setattr(urllib.request, "_opener", urllib.request.build_opener(handler))
    tools = tmp_path / ".tools" / "pulumi"
    command = stack_script.pulumi_command(tools)
    assert handler.requested == ["https://get.pulumi.com/install.sh"]
    assert command.command == str(tools / "bin" / "pulumi")
    assert str(command.version) == SDK_VERSION
    # Installed once: the next run uses it without downloading anything.
    stack_script.pulumi_command(tools)
    assert handler.requested == ["https://get.pulumi.com/install.sh"]


def test_make_rollback_sets_the_previous_war_pinned_and_runs_up(fresh_checkout, fake_tools):
    from components import releases

    history = fresh_checkout / ".pulumi-state" / "releases" / "training.json"
    refused, _ = run_stack(fresh_checkout, fake_tools, "rollback")
    assert refused.returncode == 1 and "no previous one" in refused.stderr, refused.stderr
    releases.record(history, "https://example.invalid/one.war", "a" * 64)
    releases.record(history, "https://example.invalid/two.war", "b" * 64)
    finished, calls = run_stack(fresh_checkout, fake_tools, "rollback")
    assert finished.returncode == 0, finished.stderr
    argvs = [call["argv"] for call in calls]
    set_url = ["config", "set", "companynews:warUrl", "https://example.invalid/one.war", "--stack", "training",
               "--non-interactive"]
    set_pin = ["config", "set", "companynews:warSha256", "a" * 64, "--stack", "training", "--non-interactive"]
    up = ["up", "--stack", "training", "--yes", "--refresh", "--non-interactive"]
    assert set_url in argvs and set_pin in argvs and up in argvs, argvs
    assert argvs.index(set_pin) < argvs.index(up), "the war must be set before the up"
    assert git_status(fresh_checkout) == "", "the history must stay outside git"
