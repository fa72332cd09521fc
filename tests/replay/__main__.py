"""python -m tests.replay up|down --stack NAME [--set KEY=VALUE ...] [--purge]

`up` applies the Pulumi program to the local Docker engine and prints the stack outputs as one JSON
object on the last line of stdout (what `pulumi stack output --json` prints). Running it again replaces
the stack's containers, reusing its network and data volume: one environment, never two.
`down` removes what `up` made; the data volume only with --purge.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import sys

from components.settings import SettingsError, all_rules
from tests.program import run_program, stack_config
from tests.replay.engine import ReplayError, ReplayMocks, remove_stack


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


def up(stack: str, overrides: dict[str, str]) -> dict:
    secret_keys = [rule.key for rule in all_rules() if rule.secret]
    for key in secret_keys:
        if key not in overrides:
            # What `make up` does on first use: a random secret, since the stack file's is encrypted.
            overrides[key] = secrets.token_urlsafe(18)
            log(f"{key} not given: generated a random one for this run")
    config = stack_config(stack, overrides)
    # Nothing stale survives a second `up`: the containers are replaced, the data volume is kept.
    remove_stack(stack, purge=False, log=log)
    return run_program(ReplayMocks(log=log), stack, config, secret_keys=secret_keys)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.replay", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("up", "down"))
    parser.add_argument("--stack", required=True)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--purge", action="store_true", help="with down: also delete the data volume")
    args = parser.parse_args(argv)
    os.chdir(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    try:
        if args.action == "down":
            remove_stack(args.stack, purge=args.purge, log=log)
            return 0
        exports = up(args.stack, parse_overrides(args.overrides))
    except (SettingsError, ReplayError) as error:
        print(f"replay: {error}", file=sys.stderr)
        return 1
    print(json.dumps(exports, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
