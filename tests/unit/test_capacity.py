"""scripts/capacity: the benchmark's per-task numbers and a target load in, a plan per phase out."""
from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import math
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


def run(target, path, connections, rps, p99, non_2xx=0):
    return {"target": target, "path": path, "connections": connections, "requests_per_second": rps,
            "latency_ms": {"p50": p99 / 3, "p99": p99}, "non_2xx": non_2xx}


BENCH = {"runs": [
    run("static direct", "/styles/company.css", 10, 3000, 4),
    run("static direct", "/images/logo.png", 50, 4000, 9),
    run("static direct", "/images/logo.png", 50, 9999, 9, non_2xx=5),   # not clean: ignored
    run("app direct", "/Read.action", 10, 1000, 5),
    run("app direct", "/Read.action", 50, 1200, 40),
    run("front door", "/Read.action", 50, 9000, 8),
]}
PER_TASK = capacity.per_task_from_bench(BENCH, writes_per_second=100)


def test_per_task_numbers_are_the_best_clean_direct_runs_shared_with_another_task():
    assert PER_TASK.static_rps == 4000 * capacity.TASK_SHARE_OF_BENCH_HOST
    assert PER_TASK.app_read_rps == 1200 * capacity.TASK_SHARE_OF_BENCH_HOST
    assert PER_TASK.light_p99_ms == 5, "the light-load p99 is the lowest concurrency's"


def phase(rps, cdn=False, **changes):
    return capacity.Phase("test", rps=rps, cdn=cdn, az_count=changes.get("az_count", 2),
                          nat_per_az=changes.get("nat_per_az", False),
                          instance_type=changes.get("instance_type", "t3.medium"),
                          min_instances=changes.get("min_instances", 2))


def plan(rps, cdn=False, p99_ms=1000, write_share=0.01, **changes):
    return capacity.plan(phase(rps, cdn, **changes), PER_TASK, write_share=write_share, static_share=0.6,
                         p99_ms=p99_ms)


def test_static_tasks_follow_the_static_load():
    cap = capacity.utilisation_cap(5, 1000)
    small, large = plan(2000), plan(8000)
    assert small.static_tasks == max(2, math.ceil(2000 * 0.6 / (PER_TASK.static_rps * cap)))
    assert large.static_tasks > small.static_tasks
    assert plan(10).static_tasks == 2, "never fewer than two static tasks (one per zone)"


def test_a_tighter_p99_target_needs_more_tasks():
    assert plan(8000, p99_ms=20).static_tasks > plan(8000, p99_ms=1000).static_tasks


def test_cdn_caps_what_reaches_the_origin():
    without, with_cdn = plan(5000), plan(5000, cdn=True)
    assert without.origin_dynamic_rps == pytest.approx(5000 * 0.39)
    assert with_cdn.origin_dynamic_rps <= capacity.CDN_EDGE_LOCATIONS * capacity.CACHED_PAGES
    assert with_cdn.static_tasks == 2


def test_reads_past_the_one_app_task_ask_for_the_cdn():
    busy = plan(5000)
    assert busy.app_utilisation > busy.utilisation_cap
    assert any("turn on cdn" in warning for warning in busy.warnings), busy.warnings
    assert not plan(5000, cdn=True).warnings


def test_posts_past_the_single_writer_ceiling_name_the_application_change():
    flooded = plan(5000, cdn=True, write_share=0.1)   # 500 posts/s against a 100/s writer
    assert any("single writer" in w and "shared database" in w for w in flooded.warnings), flooded.warnings
    assert flooded.app_tasks == 1, "the writer is never scaled out"


def test_instances_hold_every_task_within_their_enis():
    busy = plan(20000)
    tasks_per_instance = capacity.INSTANCE_TYPES["t3.medium"][1] - 1
    assert busy.instances * tasks_per_instance >= busy.static_tasks + 1
    assert plan(10, az_count=3).instances >= 3, "at least one instance per zone"


def test_cost_grows_with_instances_and_nat_per_zone():
    assert plan(20000).total > plan(50).total
    assert plan(50, nat_per_az=True).monthly_cost["nat"] > plan(50).monthly_cost["nat"]
    assert "cloudfront" in plan(50, cdn=True).monthly_cost and "cloudfront" not in plan(50).monthly_cost


def test_default_limited_release_costs_what_production_md_says():
    limited = capacity.plan(capacity.PHASES[0], PER_TASK, write_share=0.01, static_share=0.6, p99_ms=1000)
    assert limited.instances == 2 and limited.static_tasks == 2
    assert 140 <= limited.total <= 156, f"docs/production.md estimates about $148; the model says {limited.total}"


def test_p99_target_below_what_light_load_gets_is_refused():
    with pytest.raises(capacity.CapacityError, match="p99"):
        plan(50, p99_ms=4)


def test_every_phase_says_how_to_configure_it():
    for item in (plan(50), plan(5000, cdn=True)):
        assert f"companynews:staticMinTasks {item.static_tasks}" in item.config
        assert f"companynews:cdn {str(item.cdn).lower()}" in item.config


def test_command_prints_a_table_and_json(tmp_path):
    results = tmp_path / "results.json"
    results.write_text(json.dumps(BENCH))
    table = subprocess.run([sys.executable, str(SCRIPT), "--bench", str(results)], capture_output=True, text=True,
                           check=True).stdout
    for name in ("limited release", "public launch", "worldwide"):
        assert name in table
    plans = json.loads(subprocess.run([sys.executable, str(SCRIPT), "--bench", str(results), "--json"],
                                      capture_output=True, text=True, check=True).stdout)["plans"]
    assert [p["phase"] for p in plans] == ["limited release", "public launch", "worldwide"]
    assert all(p["total"] > 0 for p in plans)


@pytest.mark.parametrize("arguments, words", [
    (["--bench", "/nonexistent.json"], "--bench"),
    (["--rps", "-5"], "--rps"),
    (["--write-share", "0.5", "--static-share", "0.6"], "fractions"),
])
def test_bad_input_is_refused_with_exit_2(tmp_path, arguments, words):
    results = tmp_path / "results.json"
    results.write_text(json.dumps(BENCH))
    command = [sys.executable, str(SCRIPT)] + (["--bench", str(results)] if "--bench" not in arguments else [])
    finished = subprocess.run(command + arguments, capture_output=True, text=True)
    assert finished.returncode == 2 and words in finished.stderr, finished.stderr


def test_bench_results_without_direct_runs_are_refused(tmp_path):
    with pytest.raises(capacity.CapacityError, match="make bench"):
        capacity.per_task_from_bench({"runs": [run("front door", "/", 50, 100, 5)]}, 100)
