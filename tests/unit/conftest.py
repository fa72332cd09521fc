"""Unit-test fixtures: small local artifacts so the program runs under mocks without any network."""
from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from tests.program import run_program, stack_config
from tests.unit.mocks import RecordingMocks

STATS_PASSWORD = "unit-test-stats-password"


@pytest.fixture(scope="session")
def local_artifacts(tmp_path_factory) -> dict[str, str]:
    """warUrl/staticUrl overrides pointing at a minimal valid war and static archive."""
    folder = tmp_path_factory.mktemp("artifacts")
    war = folder / "companyNews.war"
    with zipfile.ZipFile(war, "w") as archive:
        archive.writestr("WEB-INF/web.xml", "<web-app/>")
    static = folder / "static.zip"
    with zipfile.ZipFile(static, "w") as archive:
        archive.writestr("static/images/logo.png", b"\x89PNG\r\n\x1a\n")
        archive.writestr("static/styles/company.css", "body { margin: 0 }\n")
    return {"warUrl": str(war), "staticUrl": str(static)}


@pytest.fixture(autouse=True, scope="session")
def artifact_cache(tmp_path_factory):
    """Keep the program's artifact cache out of the work tree during tests."""
    patcher = pytest.MonkeyPatch()
    patcher.setenv("COMPANYNEWS_ARTIFACT_CACHE", str(tmp_path_factory.mktemp("artifact-cache")))
    yield
    patcher.undo()


@pytest.fixture
def run_stack(local_artifacts):
    """run_stack(stack, **overrides) -> (mocks, exports) for one run of __main__.py under mocks."""
    def run(stack: str = "training", secret_keys=("statsPassword",), transformations=(), **overrides):
        mocks = RecordingMocks()
        defaults = {"statsPassword": STATS_PASSWORD} if stack == "training" else {}
        config = stack_config(stack, {**local_artifacts, **defaults, **overrides})
        exports = run_program(mocks, stack, config, secret_keys=secret_keys,
                              transformations=transformations)
        return mocks, exports
    return run
