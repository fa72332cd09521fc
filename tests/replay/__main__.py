"""python -m tests.replay up|rollback|down --stack NAME [--set KEY=VALUE ...] [--refresh] [--purge] [--i-mean-it]

`up` applies the Pulumi program to the local Docker engine as `pulumi up` would: against the stack's state
(`.replay/<stack>/state.json`) it creates, leaves alone, updates in place, replaces, or deletes what the
program no longer declares, prints that plan, and prints the stack outputs as one JSON object on the last
line of stdout (what `pulumi stack output --json` prints). `--refresh` first reads every resource back from
Docker, as `pulumi up --refresh` does: a container removed or stopped by hand is created again.
`down` deletes what the state holds (`pulumi destroy`); the data volume stays, as the program retains it.
`down --purge` also removes the data volume the state recorded (what `make purge` does), and the release history.
After each `up` the war now serving is recorded in the stack's release history (`.replay/<stack>/releases.json`,
components/releases.py); `rollback` is `up` with warUrl and warSha256 of the previous release (what
`make rollback` does).

The stacks `training` and `production` belong to people; the replay touches them only with --i-mean-it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import pulumi

from components.settings import SettingsError, all_rules
import yaml

from components import releases
from tests.program import REPO_ROOT, run_program, stack_config
from tests.replay.engine import USER_STACKS, ReplayError, ReplayMocks, check_config_types, destroy, state_root


def log(message: str) -> None:
    print(f"replay: {message}", file=sys.stderr, flush=True)


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    overrides = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator:
            raise SystemExit(f"--set {pair!r}: expected KEY=VALUE")
        overrides[key] = value
    return overrides


def release_history(stack: str):
    return state_root() / stack / "releases.json"


def up(stack: str, overrides: dict[str, str], refresh: bool = False) -> tuple[dict, list[str]]:
    """Run the program against the stack's state; return its outputs and the plan it applied."""
    secret_keys = [rule.key for rule in all_rules() if rule.secret]
    config = stack_config(stack, overrides)
    check_config_types(stack, config, yaml.safe_load((REPO_ROOT / "Pulumi.yaml").read_text()).get("config") or {})
    engine = ReplayMocks(stack, log=log, refresh=refresh)
    exports = run_program(engine, stack, config, secret_keys=secret_keys)
    # Only a program that ran to its end deletes what it no longer declares, as with the engine.
    engine.delete_undeclared()
    serving = releases.serving_war_sha256(stack)
    if serving:
        releases.record(release_history(stack), config.get("companynews:warUrl", ""), serving)
    return exports, engine.plan.lines()


def rollback_overrides(stack: str, overrides: dict[str, str]) -> dict[str, str]:
    """`overrides` with the previous release's war, pinned by its sha256."""
    previous = releases.previous(release_history(stack))
    log(f"rolling back to {previous.war_url} (sha256 {previous.war_sha256}, recorded {previous.recorded_at})")
    return {**overrides, "warUrl": previous.war_url, "warSha256": previous.war_sha256}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.replay", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("up", "rollback", "down"))
    parser.add_argument("--stack", required=True)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--refresh", action="store_true", help="with up: read every resource back first")
    parser.add_argument("--purge", action="store_true", help="with down: also delete the data volume")
    parser.add_argument("--i-mean-it", action="store_true",
                        help=f"allow the stacks {' and '.join(USER_STACKS)}, which are people's own")
    args = parser.parse_args(argv)
    if args.stack in USER_STACKS and not args.i_mean_it:
        print(f"replay: stack {args.stack!r} is a person's own stack (make up); the replay will not touch it. "
              f"Use a stack name of your own, or add --i-mean-it.", file=sys.stderr)
        return 2
    os.chdir(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    try:
        if args.action == "down":
            for line in destroy(args.stack, purge=args.purge, log=log).lines():
                print(line)
            if args.purge:
                release_history(args.stack).unlink(missing_ok=True)
            return 0
        overrides = parse_overrides(args.overrides)
        if args.action == "rollback":
            overrides = rollback_overrides(args.stack, overrides)
        exports, plan = up(args.stack, overrides, refresh=args.refresh)
    except (SettingsError, ReplayError, pulumi.RunError, releases.ReleaseHistoryError) as error:
        # One message, as the Pulumi CLI prints a RunError: no traceback.
        print(f"replay: error: {error}", file=sys.stderr)
        return 1
    for line in plan:
        print(line)
    print(json.dumps(exports, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
