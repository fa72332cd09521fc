# companynews-infra — the two quick-start commands are `make up` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
STACK ?= training
# Local, file-backed Pulumi state inside the project: no Pulumi Cloud account needed.
export PULUMI_BACKEND_URL ?= file://$(CURDIR)/.pulumi-state
PASSPHRASE_FILE := $(CURDIR)/.pulumi-state/passphrase

.PHONY: venv up down preview purge test base-image bench bench-tools rollback

$(VENV)/.installed: requirements.txt requirements-test.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-test.txt
	touch $@

venv: $(VENV)/.installed

$(VENV)/.bench-installed: $(VENV)/.installed requirements-bench.txt
	$(VENV)/bin/pip install --quiet -r requirements-bench.txt
	touch $@

# Bring the training stack up on the local Docker host; preview it; take it down (the data stays); purge it
# (the data goes). scripts/stack does every step: the Pulumi CLI (installed into .tools/pulumi/ when
# missing), the local state and passphrase, the stack's own settings in .pulumi-state/project/ (outside
# git), its secrets (never on a command line). docs/lifecycle.md says what each does to containers and data.
up: venv
	@$(VENV)/bin/python scripts/stack up --stack $(STACK)

preview: venv
	@$(VENV)/bin/python scripts/stack preview --stack $(STACK)

# Back to the war the stack served before the last release (.pulumi-state/releases/<stack>.json), with the
# same blue/green hand-over as any release (docs/single-writer.md, "Release hand-over (training)").
rollback: venv
	@$(VENV)/bin/python scripts/stack rollback --stack $(STACK)

down: venv
	@$(VENV)/bin/python scripts/stack down --stack $(STACK)

# Asks first; `make purge YES=1` does not.
purge: venv
	@$(VENV)/bin/python scripts/stack purge --stack $(STACK) $(if $(YES),--yes)

# Unit tests (mock runtime), container tests and replay tests (real Docker). Needs a Docker engine and
# the local base image (scripts/base-image); `bash .ci/run` sets both up on a bare machine.
test: venv
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider tests

base-image:
	scripts/base-image companynews-base:bookworm

# Front-door benchmark (docs/benchmarks.md): replays its own stack `bench` from the stand-in war, measures
# it and the tiers behind it with wrk, removes it. Options go through BENCH_ARGS, e.g.
# `make bench BENCH_ARGS="--url http://127.0.0.1:8080/"` benches the running training stack instead.
bench: bench-tools $(VENV)/.bench-installed
	$(VENV)/bin/python scripts/bench $(BENCH_ARGS)

# Checked before anything is installed or built.
bench-tools:
	@command -v wrk >/dev/null || { echo "missing: wrk, the load generator (Debian/Ubuntu: apt-get install wrk)"; exit 1; }
	@docker info >/dev/null 2>&1 || { echo "missing: a running Docker engine (docker info fails)"; exit 1; }

# --- Operate a stack (scripts/operate; README "Operate"). STACK defaults to training. ---------------------
.PHONY: status logs backup restore

# Tiers, containers (health, writer/standby, address, uptime, restarts), URLs, data volume and free space;
# for an aws stack its ECS services and targets (skipped without AWS credentials).
status: venv
	@$(VENV)/bin/python scripts/operate status $(STACK)

# Follows every tier's log, or one: `make logs TIER=app`.
logs: venv
	@$(VENV)/bin/python scripts/operate logs $(STACK) $(if $(TIER),--tier $(TIER))

# A consistent copy of the Prevayler folder to backups/<stack>-<time>.tar.gz, with its .sha256.
backup: venv
	@$(VENV)/bin/python scripts/operate backup $(STACK)

# `make restore FILE=backups/<stack>-<time>.tar.gz [STACK=...] [FORCE=1]`: refuses a data volume that is
# not empty unless FORCE=1.
restore: venv
	@test -n "$(FILE)" || { echo "usage: make restore FILE=backups/<stack>-<time>.tar.gz [STACK=training] [FORCE=1]"; exit 2; }
	@$(VENV)/bin/python scripts/operate restore $(STACK) "$(FILE)" $(if $(FORCE),--force)
