# companynews-infra — the two quick-start commands are `make up` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
STACK ?= training
# Local, file-backed Pulumi state inside the project: no Pulumi Cloud account needed.
export PULUMI_BACKEND_URL ?= file://$(CURDIR)/.pulumi-state
PASSPHRASE_FILE := $(CURDIR)/.pulumi-state/passphrase

.PHONY: venv up down preview test base-image bench bench-tools

$(VENV)/.installed: requirements.txt requirements-test.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements-test.txt
	touch $@

venv: $(VENV)/.installed

$(VENV)/.bench-installed: $(VENV)/.installed requirements-bench.txt
	$(VENV)/bin/pip install --quiet -r requirements-bench.txt
	touch $@

# Bring the training stack up on the local Docker host.
up: venv
	@command -v docker >/dev/null || { echo "missing: the docker CLI (https://docs.docker.com/engine/install/)"; exit 1; }
	@docker info >/dev/null 2>&1 || { echo "missing: a running Docker engine (docker info fails)"; exit 1; }
	@command -v pulumi >/dev/null || { echo "missing: the Pulumi CLI (https://www.pulumi.com/docs/install/)"; exit 1; }
	@mkdir -p .pulumi-state
	@if [ -z "$${PULUMI_CONFIG_PASSPHRASE:-}$${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ] && [ ! -f $(PASSPHRASE_FILE) ]; then \
	  $(VENV)/bin/python -c 'import secrets; print(secrets.token_urlsafe(24))' > $(PASSPHRASE_FILE); \
	  chmod 600 $(PASSPHRASE_FILE); echo "generated a stack passphrase in $(PASSPHRASE_FILE)"; fi
	@export PULUMI_CONFIG_PASSPHRASE_FILE=$${PULUMI_CONFIG_PASSPHRASE_FILE:-$(PASSPHRASE_FILE)}; \
	  pulumi stack select --create $(STACK) --secrets-provider passphrase && \
	  { pulumi config get companynews:statsPassword >/dev/null 2>&1 || \
	    pulumi config set --secret companynews:statsPassword "$$($(VENV)/bin/python -c 'import secrets; print(secrets.token_urlsafe(18))')"; } && \
	  pulumi up --stack $(STACK) --yes && pulumi stack output --stack $(STACK) --json

down: venv
	@export PULUMI_CONFIG_PASSPHRASE_FILE=$${PULUMI_CONFIG_PASSPHRASE_FILE:-$(PASSPHRASE_FILE)}; \
	  pulumi destroy --stack $(STACK) --yes

preview: venv
	@export PULUMI_CONFIG_PASSPHRASE_FILE=$${PULUMI_CONFIG_PASSPHRASE_FILE:-$(PASSPHRASE_FILE)}; \
	  pulumi preview --stack $(STACK)

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
