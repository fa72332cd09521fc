"""The training stack through its lifecycle, as `make up` run again and again would treat it: nothing changes
when nothing changed, a setting reaches the containers it concerns, a new war keeps every post, containers
stop gracefully, and `--refresh` notices what was removed by hand.

The tests share one stack and run in file order; each leaves it up and serving.
"""
from __future__ import annotations

import re
import shutil
import time
import zipfile


def snapshot(stack) -> dict[str, tuple[str, str]]:
    """name -> (container ID, start time) of every container of the stack."""
    result = {}
    for container in stack.containers():
        container.reload()
        result[container.name] = (container.id, container.attrs["State"]["StartedAt"])
    return result


def memory_limit_mb(container) -> int:
    container.reload()
    return container.attrs["HostConfig"]["Memory"] // (1024 * 1024)


def test_second_up_changes_nothing(replayed_training):
    replayed_training.wait_until_serving()
    before = snapshot(replayed_training)
    started = time.monotonic()
    replayed_training.up()
    took = time.monotonic() - started
    changes = replayed_training.changes()
    print(f"second up: {took:.1f} s, {changes}")
    assert {op: n for op, n in changes.items() if op != "unchanged" and n} == {}, replayed_training.plan
    assert changes["unchanged"] > 0, replayed_training.plan
    assert snapshot(replayed_training) == before, "a container was replaced or restarted by an up with no change"


def test_app_memory_change_restarts_the_app_under_the_new_limit(replayed_training):
    assert replayed_training.post("kept-through-memory-change").status_code == 302
    before = snapshot(replayed_training)
    replayed_training.up(appMemoryMb="640")
    # A memory change is a release of the app tier: new containers in the other slot, the old ones deleted.
    created = [line for line in replayed_training.plan
               if line.startswith("+ create") and "docker:index/container:Container" in line]
    assert created and all(re.search(r"app-(blue|green)-\d", line) for line in created), replayed_training.plan
    old_ids = {container_id for container_id, _ in before.values()}
    for container in replayed_training.containers("app"):
        assert memory_limit_mb(container) == 640, f"{container.name} kept its old memory limit"
        assert container.id not in old_ids, f"{container.name}: the JVM still runs with its old heap"
    replayed_training.wait_until_serving()
    assert "kept-through-memory-change" in replayed_training.titles_listed()


def test_proxy_memory_change_reaches_its_limit_and_cache_tmpfs(replayed_training):
    replayed_training.up(appMemoryMb="640", proxyMemoryMb="320")
    (proxy,) = replayed_training.containers("proxy")
    assert memory_limit_mb(proxy) == 320
    # The proxy's micro-cache tmpfs is half its memory: a tmpfs change the provider would record and ignore.
    assert "size=160m" in proxy.attrs["HostConfig"]["Tmpfs"]["/tmp"], proxy.attrs["HostConfig"]["Tmpfs"]
    assert replayed_training.changes()["replace"] >= 1 and replayed_training.changes()["update"] == 0
    replayed_training.wait_until_serving()


def test_new_war_replaces_the_app_and_keeps_every_post(replayed_training, standin_war, tmp_path):
    titles = [f"before-new-war-{index}" for index in range(3)]
    for title in titles:
        assert replayed_training.post(title).status_code == 302
    new_war = tmp_path / "companyNews.war"
    shutil.copy(standin_war, new_war)
    with zipfile.ZipFile(new_war, "a") as war:
        war.writestr("release.txt", "the next release\n")
    apps_before = {c.name: c.id for c in replayed_training.containers("app")}
    replayed_training.up(appMemoryMb="640", proxyMemoryMb="320", warUrl=str(new_war))
    assert any("app-image" in line and line.startswith("~ update") for line in replayed_training.plan), (
        replayed_training.plan)
    apps_after = {c.name: c.id for c in replayed_training.containers("app")}
    assert len(apps_after) == len(apps_before) and not set(apps_after.values()) & set(apps_before.values())
    replayed_training.wait_until_serving()
    listed = replayed_training.titles_listed()
    assert all(title in listed for title in titles), "a post was lost with the new war"


def test_containers_stop_gracefully(replayed_training):
    assert replayed_training.post("written-before-down").status_code == 302
    replayed_training.writer()
    replayed_training.down()
    stops = re.findall(r"container (\S+): stopped in ([\d.]+) s \(grace (\d+) s\), exit code (\d+)",
                       replayed_training.log)
    assert len(stops) == 5, replayed_training.log
    for name, seconds, grace, exit_code in stops:
        print(f"graceful stop: {name} {seconds} s of {grace} s, exit code {exit_code}")
        assert int(grace) >= 5, f"{name} has no grace period: docker stop kills it at once"
        assert exit_code != "137", f"{name} was killed (SIGKILL), not stopped: exit code 137 after {seconds} s"
        assert float(seconds) < int(grace), f"{name} used its whole grace period"
    replayed_training.up(appMemoryMb="640", proxyMemoryMb="320")
    replayed_training.wait_until_serving()
    assert "written-before-down" in replayed_training.titles_listed()


def test_refresh_recreates_a_container_removed_by_hand(replayed_training):
    static = replayed_training.containers("static")[0]
    static.remove(force=True)
    replayed_training.up(appMemoryMb="640", proxyMemoryMb="320")
    assert replayed_training.changes()["create"] == 0, "without --refresh the state still holds the container"
    replayed_training.up("--refresh", appMemoryMb="640", proxyMemoryMb="320")
    assert replayed_training.changes()["create"] >= 1, replayed_training.plan
    assert static.name in [c.name for c in replayed_training.containers("static")], "refresh did not bring it back"


def test_refresh_recreates_a_container_stopped_by_hand(replayed_training):
    static = replayed_training.containers("static")[-1]
    static.stop(timeout=5)
    replayed_training.up("--refresh", appMemoryMb="640", proxyMemoryMb="320")
    assert replayed_training.changes()["create"] >= 1, replayed_training.plan
    (again,) = [c for c in replayed_training.containers("static") if c.name == static.name]
    assert again.status == "running" and again.id != static.id


def test_fewer_replicas_delete_what_is_no_longer_declared(replayed_training):
    replayed_training.up(appMemoryMb="640", proxyMemoryMb="320", staticReplicas="1")
    deleted = [line for line in replayed_training.plan if line.startswith("- delete")]
    assert len(deleted) == 1 and "static-1" in deleted[0], replayed_training.plan
    assert [c.name.rsplit("-", 2)[-2:] for c in replayed_training.containers("static")] == [["static", "0"]]
    replayed_training.wait_until_serving()
    assert "written-before-down" in replayed_training.titles_listed()


def test_fewer_app_replicas_when_the_writer_is_dropped(replayed_training):
    """The engine deletes dropped replicas last, after the new proxy's smoke check: the writer among them
    must be stopped first, or the kept standbys never get its lock."""
    writer = replayed_training.writer()
    if writer.name.endswith("-0"):
        writer.restart(timeout=30)      # app-<slot>-1 takes the lock; app-<slot>-0 comes back as its standby
    assert replayed_training.writer().name.endswith("-1"), "could not make the last replica the writer"
    # The role file says writer once the lock is taken; Jetty listens about a second later.
    replayed_training.wait_until_serving()
    assert replayed_training.post("before-scale-down").status_code == 302
    replayed_training.up(appMemoryMb="640", proxyMemoryMb="320", staticReplicas="1", appReplicas="1")
    assert any(re.match(r"- delete app-(blue|green)-1 ", line) for line in replayed_training.plan), (
        replayed_training.plan)
    assert replayed_training.writer().name.endswith("-0")
    replayed_training.wait_until_serving()
    assert "before-scale-down" in replayed_training.titles_listed()
