"""scripts/capacity: the real war's measured numbers and a target load in, a plan per phase and the changes only
the app's developers can make out; docs/production.md's cost table is its limited-release phase."""
from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import math
import re
import subprocess
import sys

import pytest

from tests.program import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "capacity"


def load_capacity():
    loader = importlib.machinery.SourceFileLoader("capacity", str(SCRIPT))
    spec = importlib.util.spec_from_loader("capacity", loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules["capacity"] = module  # dataclasses look their module up while the class is built
    loader.exec_module(module)
    return module


capacity = load_capacity()
PER_TASK = capacity.per_task()


def run(target, path, connections, rps, p99, non_2xx=0):
    return {"target": target, "path": path, "connections": connections, "requests_per_second": rps,
            "latency_ms": {"p50": p99 / 3, "p99": p99}, "non_2xx": non_2xx}


BENCH = {"runs": [
    run("static direct", "/styles/company.css", 10, 3000, 4),
    run("static direct", "/images/logo.png", 50, 4000, 9),
    run("static direct", "/images/logo.png", 50, 9999, 9, non_2xx=5),   # not clean: ignored
    run("app direct", "/Read.action", 10, 1000, 5),                     # the stand-in's: not used for the app
]}


def phase(rps, cdn=False, **changes):
    return capacity.Phase("test", rps=rps, cdn=cdn, az_count=changes.get("az_count", 2),
                          nat_per_az=changes.get("nat_per_az", False),
                          instance_type=changes.get("instance_type", "t3.medium"),
                          min_instances=changes.get("min_instances", 2))


def plan(rps, cdn=False, p99_ms=1000, write_share=0.01, articles=100, **changes):
    return capacity.plan(phase(rps, cdn, **changes), PER_TASK, mix=capacity.Mix(write_share=write_share),
                         p99_ms=p99_ms, articles=articles)


def test_the_app_numbers_are_the_real_wars_measurements():
    """3,000 uncached /Read.action/s on 2 cores with few articles, 1.1 s at 17,000, 1,692 posts/s; the writer
    task has one of the two cores."""
    assert PER_TASK.app_read_rps(0) == pytest.approx(3000 / 2)
    assert PER_TASK.read_action_core_seconds(17_000) == pytest.approx(1.1)
    assert PER_TASK.writes_per_second == pytest.approx(1692 / 2)
    assert PER_TASK.light_p99_ms == 28
    assert capacity.read_action_bytes(17_000) == pytest.approx(3.5e6)


def test_the_static_number_comes_from_the_best_clean_bench_run():
    assert capacity.static_rps_from_bench(BENCH) == 4000
    assert capacity.per_task(4000).static_rps == 4000 * capacity.TASK_SHARE_OF_BENCH_HOST
    with pytest.raises(capacity.CapacityError, match="make bench"):
        capacity.static_rps_from_bench({"runs": [run("front door", "/", 50, 100, 5)]})


def test_static_tasks_follow_the_static_load():
    cap = capacity.utilisation_cap(PER_TASK.light_p99_ms, 1000)
    small, large = plan(20_000), plan(80_000)
    assert small.static_tasks == max(2, math.ceil(20_000 * 0.6 / (PER_TASK.static_rps * cap)))
    assert large.static_tasks > small.static_tasks
    assert plan(10).static_tasks == 2, "never fewer than two static tasks (one per zone)"


def test_the_writer_saturates_as_the_article_list_grows():
    few, many = plan(50, articles=100), plan(50, articles=17_000)
    assert few.app_utilisation < few.utilisation_cap, few
    assert many.app_utilisation > 10 * many.utilisation_cap, many
    assert any("paginate the list" in warning for warning in many.warnings), many.warnings


def test_cdn_caps_what_reaches_the_origin():
    without, with_cdn = plan(5000), plan(5000, cdn=True)
    assert without.origin_dynamic_rps == pytest.approx(5000 * 0.39)
    assert with_cdn.origin_dynamic_rps <= capacity.CDN_EDGE_LOCATIONS * capacity.CACHED_PAGES
    assert with_cdn.static_tasks == 2


def test_posts_past_the_single_writer_ceiling_name_the_application_change():
    flooded = plan(100_000, cdn=True, write_share=0.1)   # 10,000 posts/s against an 846/s writer
    assert any("single writer" in w and "shared database" in w for w in flooded.warnings), flooded.warnings
    assert flooded.app_tasks == 1, "the writer is never scaled out"


def test_instances_hold_the_static_tasks_within_their_enis():
    busy = plan(200_000, cdn=False)
    tasks_per_instance = capacity.INSTANCE_TYPES["t3.medium"][1] - 1
    assert busy.instances * tasks_per_instance >= busy.static_tasks
    assert plan(10, az_count=3).instances >= 3, "at least one instance per zone"


def test_cost_grows_with_instances_nat_per_zone_and_page_size():
    assert plan(200_000).total > plan(50).total
    assert plan(50, nat_per_az=True).monthly_cost["nat gateways"] > plan(50).monthly_cost["nat gateways"]
    assert "cloudfront" in plan(50, cdn=True).monthly_cost and "cloudfront" not in plan(50).monthly_cost
    assert plan(500, cdn=True, articles=17_000).monthly_cost["cloudfront"] > \
        10 * plan(500, cdn=True, articles=100).monthly_cost["cloudfront"], "a 3.5 MB page costs its bytes"


def documented_costs() -> tuple[dict[str, float], float]:
    """The item lines and the total of docs/production.md's cost table."""
    text = (REPO_ROOT / "docs" / "production.md").read_text()
    section = text.split("## What it costs", 1)[1].split("\n## ", 1)[0]
    items = {match[0].strip(): float(match[1].replace(",", "")) for match in
             re.findall(r"^\| ([a-z0-9 ]+?) \|[^\n]*\| \$([0-9,.]+) \|$", section, flags=re.MULTILINE)}
    (total,) = re.findall(r"\*\*≈ \$([0-9,.]+)\*\*", section)
    return items, float(total.replace(",", ""))


def test_production_md_cost_table_is_the_models_limited_release_line_by_line():
    limited = capacity.plan(capacity.PHASES[0], PER_TASK)
    items, total = documented_costs()
    assert items == limited.monthly_cost, f"docs/production.md {items} != scripts/capacity {limited.monthly_cost}"
    assert total == round(limited.total), f"docs/production.md totals ${total}, the model ${limited.total}"


def test_scale_out_md_quotes_the_same_limited_release_cost():
    limited = capacity.plan(capacity.PHASES[0], PER_TASK)
    text = (REPO_ROOT / "docs" / "scale-out.md").read_text()
    assert f"≈ ${round(limited.total)}" in text, f"docs/scale-out.md does not quote ${round(limited.total)}"


def test_developer_changes_name_the_load_at_which_each_is_needed():
    changes = {change.change.split(" (")[0]: change for change in capacity.developer_changes(PER_TASK)}
    assert set(changes) == {"upgrade Struts", "paginate the article list", "a shared database past the single writer"}
    assert "any load" in changes["upgrade Struts"].necessary_at
    assert re.search(r"past [0-9,]+ articles", changes["paginate the article list"].necessary_at)
    assert "677 posts/s" in changes["a shared database past the single writer"].necessary_at, changes


def test_p99_target_below_what_light_load_gets_is_refused():
    with pytest.raises(capacity.CapacityError, match="p99"):
        plan(50, p99_ms=20)


def test_every_phase_says_how_to_configure_it():
    for item in (plan(50), plan(5000, cdn=True)):
        assert f"companynews:staticMinTasks {item.static_tasks}" in item.config
        assert f"companynews:cdn {str(item.cdn).lower()}" in item.config


def test_command_prints_a_table_and_json(tmp_path):
    results = tmp_path / "results.json"
    results.write_text(json.dumps(BENCH))
    table = subprocess.run([sys.executable, str(SCRIPT), "--bench", str(results)], capture_output=True, text=True,
                           check=True).stdout
    for name in ("limited release", "public launch", "worldwide", "changes only the app's developers can make"):
        assert name in table
    printed = json.loads(subprocess.run([sys.executable, str(SCRIPT), "--json"], capture_output=True, text=True,
                                        check=True).stdout)
    assert [p["phase"] for p in printed["plans"]] == ["limited release", "public launch", "worldwide"]
    assert all(p["total"] > 0 for p in printed["plans"]) and len(printed["developer_changes"]) == 3


@pytest.mark.parametrize("arguments, words", [
    (["--bench", "/nonexistent.json"], "--bench"),
    (["--rps", "-5"], "--rps"),
    (["--articles", "-1"], "--articles"),
    (["--write-share", "0.5", "--static-share", "0.6"], "fractions"),
])
def test_bad_input_is_refused_with_exit_2(arguments, words):
    finished = subprocess.run([sys.executable, str(SCRIPT), *arguments], capture_output=True, text=True)
    assert finished.returncode == 2 and words in finished.stderr, finished.stderr
