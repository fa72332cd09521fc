"""The release history behind `make rollback` (components/releases.py)."""
from __future__ import annotations

import pytest

from components import releases


def test_history_records_each_new_war_once_and_names_the_previous(tmp_path):
    path = tmp_path / "releases" / "training.json"
    with pytest.raises(releases.ReleaseHistoryError, match="no previous one"):
        releases.previous(path)
    assert releases.record(path, "file:///wars/one.war", "a" * 64)
    assert not releases.record(path, "file:///wars/one.war", "a" * 64), "an unchanged war is no new release"
    assert releases.record(path, "file:///wars/two.war", "b" * 64)
    assert (releases.previous(path).war_url, releases.previous(path).war_sha256) == ("file:///wars/one.war", "a" * 64)
    # A rollback is recorded like any release, so the next rollback goes forward again.
    releases.record(path, "file:///wars/one.war", "a" * 64)
    assert releases.previous(path).war_sha256 == "b" * 64


def test_a_damaged_history_is_named(tmp_path):
    path = tmp_path / "training.json"
    path.write_text("{not json")
    with pytest.raises(releases.ReleaseHistoryError, match=str(path)):
        releases.previous(path)
