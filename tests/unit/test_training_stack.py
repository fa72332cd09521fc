"""The training stack as declared: what a user of `pulumi up --stack training` gets on their Docker host."""
from __future__ import annotations

import pytest

from components import constants
from components.settings import SettingsError

CONTAINER = "docker:index/container:Container"
SECRET_SIGNATURE = "4dabf18193072939515e22adb298388d"


def is_secret(value) -> bool:
    return isinstance(value, dict) and SECRET_SIGNATURE in value


def unwrap(value):
    return value["value"] if is_secret(value) else value


def labels(resource) -> dict[str, str]:
    return {item["label"]: item["value"] for item in resource.inputs.get("labels", [])}


@pytest.fixture(scope="module")
def training(local_artifacts, tmp_path_factory):
    from tests.program import run_program, stack_config
    from tests.unit.conftest import STATS_PASSWORD
    from tests.unit.mocks import RecordingMocks

    mocks = RecordingMocks()
    config = stack_config("training", {**local_artifacts, "statsPassword": STATS_PASSWORD})
    exports = run_program(mocks, "training", config, secret_keys=["statsPassword"])
    return mocks, exports


def test_only_the_proxy_publishes_ports(training):
    mocks, _ = training
    for container in mocks.of_type(CONTAINER):
        published = container.inputs.get("ports", [])
        if labels(container)[constants.LABEL_ROLE] == "proxy":
            assert published, f"{container.urn} publishes nothing: the front door must"
        else:
            assert not published, f"{container.urn} publishes {published}: only the proxy may"


def test_front_door_publishes_on_bind_address_and_stats_on_loopback(run_stack):
    mocks, _ = run_stack(bindAddress="0.0.0.0", httpPort="8181", statsPort="8505")
    (proxy,) = [c for c in mocks.of_type(CONTAINER) if labels(c)[constants.LABEL_ROLE] == "proxy"]
    published = {(port["internal"], port["external"], port["ip"]) for port in proxy.inputs["ports"]}
    assert published == {(constants.PROXY_PORT, 8181, "0.0.0.0"), (constants.PROXY_STATS_PORT, 8505, "127.0.0.1")}, (
        f"{proxy.urn} publishes {published}")


def proxy_of(mocks):
    (proxy,) = [c for c in mocks.of_type(CONTAINER) if labels(c)[constants.LABEL_ROLE] == "proxy"]
    return proxy


def test_front_door_is_on_the_stack_network_by_default(training):
    mocks, _ = training
    proxy = proxy_of(mocks)
    assert proxy.inputs.get("networkMode") in (None, "bridge"), f"{proxy.urn}: {proxy.inputs.get('networkMode')}"
    envs = unwrap(proxy.inputs["envs"])
    assert not any(item.startswith(("LISTEN_ADDRESS=", "STATS_LISTEN_ADDRESS=")) for item in envs), (
        f"{proxy.urn} on the stack's network must listen on the image's own ports: {envs}")


@pytest.mark.parametrize("setting, expected", [(None, "10"), ("0", "0"), ("45", "45")])
def test_front_door_holds_posts_for_post_hold_seconds(run_stack, setting, expected):
    mocks, _ = run_stack(**({} if setting is None else {"postHoldSeconds": setting}))
    proxy = proxy_of(mocks)
    envs = unwrap(proxy.inputs["envs"])
    assert f"POST_HOLD_SECONDS={expected}" in envs, f"{proxy.urn} with postHoldSeconds={setting}: {envs}"


def test_front_door_on_host_network_listens_on_bind_address_itself(run_stack):
    mocks, exports = run_stack(proxyNetworkMode="host", bindAddress="0.0.0.0", httpPort="8181", statsPort="8505")
    proxy = proxy_of(mocks)
    assert proxy.inputs.get("networkMode") == "host", f"{proxy.urn} runs on {proxy.inputs.get('networkMode')!r}"
    assert not proxy.inputs.get("ports"), f"{proxy.urn} publishes {proxy.inputs['ports']} on the host's network"
    assert not proxy.inputs.get("networksAdvanced"), f"{proxy.urn} joins {proxy.inputs['networksAdvanced']}"
    envs = unwrap(proxy.inputs["envs"])
    assert "LISTEN_ADDRESS=0.0.0.0:8181" in envs, f"{proxy.urn} envs: {envs}"
    assert "STATS_LISTEN_ADDRESS=127.0.0.1:8505" in envs, f"{proxy.urn}: the stats page must stay on loopback"
    assert exports["url"] == "http://127.0.0.1:8181/" and exports["stats_url"] == "http://127.0.0.1:8505/", exports


def test_tiers_stay_on_the_stack_network_when_the_front_door_is_on_the_host(run_stack):
    mocks, _ = run_stack(proxyNetworkMode="host")
    for container in mocks.of_type(CONTAINER):
        if labels(container)[constants.LABEL_ROLE] != "proxy":
            assert container.inputs.get("networkMode") in (None, "bridge"), f"{container.urn} left the network"
            assert container.inputs["networksAdvanced"][0]["ipv4Address"], f"{container.urn} has no fixed address"
            assert not container.inputs.get("ports"), f"{container.urn} publishes a port: only the proxy may"


def test_every_container_is_labelled_with_stack_and_role(training):
    mocks, _ = training
    containers = mocks.of_type(CONTAINER)
    roles = [labels(c).get(constants.LABEL_ROLE) for c in containers]
    assert sorted(roles) == ["app", "app", "proxy", "static", "static"], f"roles declared: {roles}"
    for container in containers:
        assert labels(container).get(constants.LABEL_STACK) == "training", f"{container.urn} lacks the stack label"


def test_every_container_is_health_checked_and_restarts(training):
    mocks, _ = training
    for container in mocks.of_type(CONTAINER):
        assert container.inputs.get("restart") == "unless-stopped", f"{container.urn} restart policy"
        health = container.inputs.get("healthcheck") or {}
        assert health.get("tests") == ["CMD", "/usr/local/bin/healthcheck"], f"{container.urn} has no health check"


def test_every_container_runs_hardened_as_non_root(training):
    mocks, _ = training
    expected_users = {"app": f"{constants.APP_UID}:{constants.APP_GID}",
                      "static": f"{constants.STATIC_UID}:{constants.STATIC_UID}",
                      "proxy": f"{constants.PROXY_UID}:{constants.PROXY_UID}"}
    for container in mocks.of_type(CONTAINER):
        role = labels(container)[constants.LABEL_ROLE]
        assert container.inputs.get("user") == expected_users[role], f"{container.urn} user"
        assert container.inputs.get("readOnly") is True, f"{container.urn} root filesystem is writable"
        assert container.inputs.get("capabilities") == {"drops": ["ALL"]}, f"{container.urn} keeps capabilities"
        assert "no-new-privileges:true" in container.inputs.get("securityOpts", []), f"{container.urn}"
        assert container.inputs.get("memory", 0) > 0, f"{container.urn} has no memory limit"


def test_app_containers_mount_the_volume_at_the_data_path(training):
    mocks, _ = training
    (volume,) = mocks.of_type("docker:index/volume:Volume")
    apps = [c for c in mocks.of_type(CONTAINER) if labels(c)[constants.LABEL_ROLE] == "app"]
    for app in apps:
        mounts = [(m["type"], m["source"], m["target"]) for m in app.inputs.get("mounts", [])]
        assert mounts == [("volume", volume.inputs["name"], constants.DATA_PATH)], f"{app.urn} mounts {mounts}"
    others = [c for c in mocks.of_type(CONTAINER) if labels(c)[constants.LABEL_ROLE] != "app"]
    assert all(not c.inputs.get("mounts") for c in others), "only app containers may mount the data volume"


def test_containers_run_the_image_digest_so_a_rebuild_replaces_them(training):
    mocks, _ = training
    digests = {image.name.removesuffix("-image"): image for image in mocks.of_type("docker:index/image:Image")}
    for container in mocks.of_type(CONTAINER):
        role = labels(container)[constants.LABEL_ROLE]
        assert container.inputs["image"].startswith("sha256:"), f"{container.urn} runs {container.inputs['image']}"
        assert digests[role].inputs["skipPush"] is True, f"{digests[role].urn} would push"


def test_images_build_on_the_configured_base_image(run_stack):
    mocks, _ = run_stack(baseImage="companynews-base:bookworm")
    for image in mocks.of_type("docker:index/image:Image"):
        assert image.inputs["build"]["args"]["BASE_IMAGE"] == "companynews-base:bookworm", f"{image.urn}"


def test_replica_counts_follow_config(run_stack):
    mocks, _ = run_stack(appReplicas="3", staticReplicas="4")
    roles = [labels(c)[constants.LABEL_ROLE] for c in mocks.of_type(CONTAINER)]
    assert roles.count("app") == 3 and roles.count("static") == 4, f"roles declared: {roles}"


def test_proxy_is_told_every_replica_address(training):
    """Static: its replicas. App: both release slots' addresses, the running slot's among them, so a release
    (the other slot) never changes the front door."""
    mocks, _ = training
    (proxy,) = [c for c in mocks.of_type(CONTAINER) if labels(c)[constants.LABEL_ROLE] == "proxy"]
    envs = dict(item.split("=", 1) for item in unwrap(proxy.inputs["envs"]))
    for role, variable in (("app", "APP_SERVERS"), ("static", "STATIC_SERVERS")):
        addresses = sorted(c.inputs["networksAdvanced"][0]["ipv4Address"] for c in mocks.of_type(CONTAINER)
                           if labels(c)[constants.LABEL_ROLE] == role)
        told = sorted(server.split(":")[0] for server in envs[variable].split())
        if role == "static":
            assert told == addresses, f"{variable}={envs[variable]} but {role} containers are at {addresses}"
        else:
            assert told == ["172.30.81.20", "172.30.81.21", "172.30.81.25", "172.30.81.26"], envs[variable]
            assert set(addresses) <= set(told), f"{variable}={envs[variable]} but app containers are at {addresses}"


def test_app_containers_carry_their_slot_and_release(training):
    mocks, _ = training
    apps = [c for c in mocks.of_type(CONTAINER) if labels(c)[constants.LABEL_ROLE] == "app"]
    slots = {labels(c)["companynews.slot"] for c in apps}
    releases = {labels(c)["companynews.release"] for c in apps}
    assert len(slots) == 1 and slots <= {"blue", "green"} and len(releases) == 1, (slots, releases)
    (slot,) = slots
    assert sorted(c.inputs["name"] for c in apps) == [f"companynews-training-app-{slot}-{i}" for i in (0, 1)]


def test_slot_alternates_by_release():
    from components.docker_host import choose_slot

    assert choose_slot("r1", []) == "blue"
    assert choose_slot("r1", [("blue", "r1", "2026-01-02")]) == "blue", "same release: no change"
    assert choose_slot("r2", [("blue", "r1", "2026-01-02")]) == "green"
    assert choose_slot("r3", [("green", "r2", "2026-01-03")]) == "blue"
    assert choose_slot("r2", [("", "", "2026-01-01")]) == "green", "an unslotted app-<n> sits at blue's addresses"
    # An interrupted hand-over: both slots run; the one with this release wins, else not the newest.
    both = [("green", "r2", "2026-01-03"), ("blue", "r1", "2026-01-02")]
    assert choose_slot("r1", both) == "blue" and choose_slot("r3", both) == "blue"


def test_stats_password_reaches_the_proxy_only_as_a_secret(training):
    mocks, _ = training
    for container in mocks.of_type(CONTAINER):
        envs = container.inputs.get("envs")
        if labels(container)[constants.LABEL_ROLE] == "proxy":
            assert is_secret(envs), f"{container.urn} envs carry the stats password in plain text"
            assert any(item.startswith("STATS_PASSWORD=") for item in unwrap(envs))
        else:
            assert not any("STATS_PASSWORD" in str(item) for item in unwrap(envs) or []), f"{container.urn}"


def test_smoke_check_waits_for_read_action_through_the_front_door(training):
    mocks, _ = training
    (smoke,) = [command for command in mocks.of_type("command:local:Command") if "smoke-check" in command.urn]
    assert "http://127.0.0.1:8080/Read.action" in smoke.inputs["create"], smoke.inputs["create"]
    assert "--timeout" in smoke.inputs["create"], "the smoke check must be bounded"


def test_outputs_contract(training):
    _, exports = training
    assert exports == {
        "url": "http://127.0.0.1:8080/",
        "hostname": "companynews.localhost",
        "port": 8080,
        "stats_url": "http://127.0.0.1:8404/",
        "dns_record": {"type": "A", "name": "companynews.localhost", "target": "127.0.0.1"},
    }


def resource_options(run_stack, type_: str, **overrides) -> dict:
    """name -> ResourceOptions of every resource of `type_`, as the engine would receive them."""
    import pulumi

    seen = {}

    def record(args: pulumi.ResourceTransformationArgs):
        if args.type_ == type_:
            seen[args.name] = args.opts
        return None

    run_stack(transformations=[record], **overrides)
    return seen


def test_data_volume_is_kept_on_destroy_whatever_the_config_says(run_stack):
    # The engine reads retain_on_delete from the last up's state on destroy, so it must not follow a setting.
    for overrides in ({}, {"purgeDataOnDestroy": "true"}):
        retained = {name: opts.retain_on_delete
                    for name, opts in resource_options(run_stack, "docker:index/volume:Volume", **overrides).items()}
        assert retained == {"data": True}, f"with {overrides}: the data volume must survive `pulumi destroy`"


def test_changes_the_provider_would_not_apply_replace_the_container(run_stack):
    for name, opts in resource_options(run_stack, CONTAINER).items():
        assert {"memory", "memorySwap", "tmpfs", "healthcheck"} <= set(opts.replace_on_changes or []), (
            f"{name}: a memory, tmpfs or health-check change must replace it (the provider's update ignores "
            f"them, and the JVM sizes its heap at start)")


def test_every_container_stops_gracefully(training):
    mocks, _ = training
    for container in mocks.of_type(CONTAINER):
        grace = container.inputs.get("destroyGraceSeconds") or 0
        assert grace >= 5, f"{container.urn}: destroy_grace_seconds {grace}: it would be killed without a SIGTERM"
    (writer_grace,) = {c.inputs["destroyGraceSeconds"] for c in mocks.of_type(CONTAINER) if "app-" in c.urn}
    assert writer_grace >= 30, f"app containers get {writer_grace} s to close the journal"


def test_container_inputs_read_back_unchanged(training):
    """What the provider reads back must equal what is declared, or every preview shows an update (and with
    replace_on_changes, a replacement): Go durations for the health check, no merged log options."""
    from components.docker_host import go_duration

    mocks, _ = training
    for container in mocks.of_type(CONTAINER):
        health = container.inputs["healthcheck"]
        for key in ("interval", "timeout", "startPeriod"):
            assert health[key] == go_duration(health[key]), f"{container.urn}: healthcheck {key} {health[key]!r}"
        assert container.inputs.get("logDriver") == "local" and not container.inputs.get("logOpts"), (
            f"{container.urn}: log options are replace-on-change and Docker merges the daemon's into them")


def test_go_duration_spells_durations_as_go_does():
    from components.docker_host import go_duration

    assert [go_duration(text) for text in ("5s", "120s", "90s", "2m", "3600s", "1h30m")] == [
        "5s", "2m0s", "1m30s", "2m0s", "1h0m0s", "1h30m0s"]
    with pytest.raises(ValueError, match="1.5s"):
        go_duration("1.5s")


@pytest.mark.parametrize("key, value, words", [
    ("appReplicas", "0", "an integer from 1 to 5"),
    ("httpPort", "http", "not an integer"),
    ("bindAddress", "::1", "an IPv4 address"),
    ("statsPassword", "short", "at least 12 characters"),
    ("dockerSubnet", "300.1.0.0/24", "IPv4 network"),
    ("proxyNetworkMode", "overlay", "one of bridge, host"),
])
def test_bad_config_is_refused_before_any_resource(run_stack, key, value, words):
    from tests.program import run_program, stack_config
    from tests.unit.mocks import RecordingMocks

    mocks = RecordingMocks()
    with pytest.raises(SettingsError) as refused:
        overrides = {"statsPassword": "unit-test-stats-password", key: value}
        run_program(mocks, "training", stack_config("training", overrides), secret_keys=["statsPassword"])
    message = str(refused.value)
    assert f"companynews:{key}" in message and words in message, message
    if key != "statsPassword":
        assert repr(value) in message, message
    else:
        assert value not in message, "a secret must never be echoed"
    assert mocks.resources == [], f"declared before refusing: {[r.urn for r in mocks.resources]}"


def test_containers_have_a_process_limit(run_stack):
    mocks, _ = run_stack(processLimit="2048")
    for container in mocks.of_type(CONTAINER):
        limits = {u["name"]: (u["soft"], u["hard"]) for u in container.inputs.get("ulimits", [])}
        assert limits.get("nproc") == (2048, 2048), f"{container.urn} ulimits {limits}"


@pytest.mark.parametrize("artifact, content, words", [
    ("warUrl", b"this is not a zip", "zip"),
    ("staticUrl", b"neither is this", "zip"),
])
def test_bad_artifact_is_refused_before_any_resource(tmp_path, local_artifacts, artifact, content, words):
    from components.artifacts import ArtifactError
    from tests.program import run_program, stack_config
    from tests.unit.conftest import STATS_PASSWORD
    from tests.unit.mocks import RecordingMocks

    bad = tmp_path / "bad.bin"
    bad.write_bytes(content)
    mocks = RecordingMocks()
    config = stack_config("training", {**local_artifacts, "statsPassword": STATS_PASSWORD, artifact: str(bad)})
    with pytest.raises(ArtifactError) as refused:
        run_program(mocks, "training", config, secret_keys=["statsPassword"])
    assert artifact in str(refused.value) and words in str(refused.value).lower(), str(refused.value)
    assert mocks.resources == [], f"declared before refusing: {[r.urn for r in mocks.resources]}"


def test_images_are_built_against_the_base_image_s_id(training):
    """A newer base image (`docker pull` of it) must rebuild the images: its ID is one of their inputs."""
    from components.docker_host import local_image_id

    mocks, _ = training
    images = mocks.of_type("docker:index/image:Image")
    assert images
    for image in images:
        args = image.inputs["build"]["args"]
        assert args.get("BASE_IMAGE_ID") == local_image_id(args["BASE_IMAGE"]), f"{image.urn}: {args}"
    assert local_image_id("companynews-no-such-image:never") == ""


def test_scale_down_stops_dropped_app_replicas_before_the_tier_changes(training):
    mocks, _ = training
    (scale_down,) = [c for c in mocks.of_type("command:local:Command") if "app-scale-down" in c.urn]
    slot = [labels(c)["companynews.slot"] for c in mocks.of_type(CONTAINER)
            if labels(c)[constants.LABEL_ROLE] == "app"][0]
    names = [f"companynews-training-app-{slot}-{index}" for index in range(2, constants.MAX_APP_REPLICAS)]
    assert scale_down.inputs["create"].startswith(f"docker stop --time 30 {' '.join(names)} "), scale_down.inputs
    assert scale_down.inputs["triggers"] == [2], "it must run again whenever appReplicas changes"
