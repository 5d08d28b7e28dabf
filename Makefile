# Booking webhooks: every target has a `## ` comment; `make` (or `make help`) lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Postgres: `make db` (scripts/ensure-db.sh) finds or starts one; migrate and test use it.
# Python tools (cargo-lambda, moto) live in one venv under target/, never system-wide.
VENV        := target/venv
VENV_BIN    := $(abspath $(VENV))/bin
export PATH := $(VENV_BIN):$(PATH)

.PHONY: help db migrate demo test test-faults pgbouncer bench bench-baseline bench-tools lint tools watch invoke-dispatch invoke-sweep listen receiver sweep build deploy schedule alarms dashboard

# Environment for the local function server and `webhooks`: .env if present, else the example.
ENV_FILE ?= $(if $(wildcard .env),.env,.env.example)

help: ## list the targets (coloured only on a terminal, and never with NO_COLOR set)
	@if [ -t 1 ] && [ -z "$${NO_COLOR:-}" ]; then on='\033[36m'; off='\033[0m'; else on=; off=; fi; \
	grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) \
	  | awk -F':.*## ' -v on="$$on" -v off="$$off" '{printf "  %s%-16s%s %s\n", on, $$1, off, $$2}'

db: ## make sure a Postgres is reachable (DATABASE_URL, else 127.0.0.1:5432, else a throwaway cluster in target/)
	@scripts/ensure-db.sh

# The engine's database: DATABASE_URL when the shell sets it (docs/deploy.md), else $(ENV_FILE)'s,
# which `make listen` and `make sweep` use (created first on a local server if missing).
migrate: ## apply migrations/ with refinery (`webhooks migrate`) to DATABASE_URL, else to $(ENV_FILE)'s database
	@given="$${DATABASE_URL:-}"; set -a && . ./$(ENV_FILE) && set +a; \
	export DATABASE_URL="$${given:-$$DATABASE_URL}"; scripts/ensure-db.sh \
	  && echo "migrate: building webhooks if needed, then migrating" \
	  && cargo run -q --bin webhooks -- migrate

tools: $(VENV_BIN)/moto_server $(VENV_BIN)/cargo-lambda ## install cargo-lambda and moto server into target/venv

$(VENV_BIN)/python:
	@scripts/ensure-python.sh
	@echo "tools: creating a Python venv in target/venv (cargo-lambda and moto come from PyPI)"
	python3 -m venv $(VENV)
	$(VENV_BIN)/pip install -q --upgrade pip

$(VENV_BIN)/moto_server: | $(VENV_BIN)/python
	@echo "tools: installing moto server, the AWS API emulator (first run only, about a minute)"
	$(VENV_BIN)/pip install -q 'moto[server]>=5,<6'

$(VENV_BIN)/cargo-lambda: | $(VENV_BIN)/python
	@echo "tools: installing cargo-lambda, the Lambda runtime emulator (first run only, about a minute)"
	$(VENV_BIN)/pip install -q 'cargo-lambda>=1.9,<2'

# The demo runs its retry sweep through cargo-lambda, installed here when Python can install it
# and it is not on PATH already; otherwise the demo calls the same handler in-process, saying so.
DEMO_TOOLS := $(if $(shell command -v cargo-lambda),,$(if $(shell python3 -c 'import ensurepip, venv' 2>/dev/null && echo yes),$(VENV_BIN)/cargo-lambda))

demo: db $(DEMO_TOOLS) ## the whole story, live: fresh database, receiver, dispatcher, outage, retries, replay (seconds after the build)
	@echo "demo: building the webhooks command, the demo and the retry-sweep function (the first build takes minutes)"
	cargo build --bin webhooks --example demo
	@# Exactly the build `cargo lambda watch` runs (`cargo run --bin retry-sweep` at the root, so
	@# features unified over the workspace), or its first invocation would compile instead.
	cargo build --bin retry-sweep
	@export DATABASE_URL="$$(scripts/ensure-db.sh --print-url)"; cargo run -q --example demo -- $(DEMO_FLAGS)

# cargo-nextest when installed (a process per test, clearer output); else cargo test runs the
# same tests, with the same filter.
NEXTEST := $(shell cargo nextest --version >/dev/null 2>&1 && echo yes)
NO_NEXTEST := echo "cargo-nextest is not installed, so cargo test runs the same tests (install it: cargo install cargo-nextest --locked)"

test: db tools ## run every test (unit + integration) but the fault suite, against a real Postgres, receivers, moto and cargo lambda
	@# The Lambda smoke test runs these binaries under `cargo lambda watch`, which builds them as
	@# `cargo run --bin <name>` at the root does (features unified over the workspace), the
	@# ops, receiver and migrate tests run `webhooks` itself, and the infra_cli tests `infra`:
	@# build exactly those first.
	@echo "test: building the Lambda binaries and the webhooks and infra commands"
	cargo build --bin dispatch --bin retry-sweep --bin webhooks --bin infra
	@# The documented commands (tests/it/docs) run `cargo run -q -p infra` as docs/deploy.md
	@# writes it: build that the same way now, or its first run compiles inside the page's time
	@# limit and a loaded machine runs out of it.
	cargo build -q -p infra
	@# The deploy rehearsal runs `make deploy BUILD_PROFILE=debug` against moto: build its Lambda
	@# binaries now (once: about 2 minutes; later runs find them built).
	@echo "test: building both functions for Lambda, in debug, for the deploy rehearsal"
	$(MAKE) --no-print-directory build BUILD_PROFILE=debug
	@echo "test: building and running the suite (the first build takes minutes)"
	@export DATABASE_URL="$$(scripts/ensure-db.sh --print-url)"; \
	if [ -n "$(NEXTEST)" ]; then \
	  cargo nextest run --workspace --no-fail-fast -E 'not test(/^faults::/)'; \
	else \
	  $(NO_NEXTEST); cargo test --workspace --no-fail-fast -- --skip faults::; \
	fi

test-faults: db pgbouncer ## the fault suite (tests/it/faults): outages, restarts, kills, hostile receivers, PgBouncer; prints its figures
	@# The kill scenario SIGKILLs a `webhooks sweep` process: build it first.
	cargo build -q -p delivery --bin webhooks
	@export DATABASE_URL="$$(scripts/ensure-db.sh --print-url)"; \
	if [ -n "$(NEXTEST)" ]; then \
	  cargo nextest run -p tests --no-fail-fast -E 'test(/^faults::/)' --success-output final; \
	else \
	  $(NO_NEXTEST); cargo test -p tests --test it --no-fail-fast -- faults:: --show-output; \
	fi

pgbouncer: ## install Debian's pgbouncer if missing (the fault suite starts its own, on a free port)
	@test -x /usr/sbin/pgbouncer || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends pgbouncer; }

watch: tools ## serve both Lambda functions locally (cargo lambda watch, env from .env or .env.example)
	cargo lambda watch --env-file $(ENV_FILE)

invoke-dispatch: tools ## invoke the local dispatch: ID=<delivery uuid>, else fixtures/dispatch.json ({"limit": 10})
	@if [ -n "$(ID)" ]; then \
	  cargo lambda invoke dispatch --data-ascii '{"deliveryId": "$(ID)"}'; \
	else \
	  cargo lambda invoke dispatch --data-file fixtures/dispatch.json; \
	fi

invoke-sweep: tools ## invoke the local retry-sweep with fixtures/sweep.json ({})
	cargo lambda invoke retry-sweep --data-file fixtures/sweep.json

# Both use $(ENV_FILE)'s database and never migrate it: where the schema is missing they say so,
# and `make migrate` installs it.
listen: ## dispatch each delivery the moment its booking commits (webhooks listen), until Ctrl-C
	set -a && . ./$(ENV_FILE) && set +a && scripts/ensure-db.sh \
	  && cargo run -q --bin webhooks -- listen

receiver: ## a local notification service on 127.0.0.1:8787 that verifies what is sent (RECEIVER_FLAGS=--fail-first 2 …)
	set -a && . ./$(ENV_FILE) && set +a && cargo run -q --bin webhooks -- receiver $(RECEIVER_FLAGS)

sweep: ## run one retry sweep now (webhooks sweep) and print its statistics
	set -a && . ./$(ENV_FILE) && set +a && scripts/ensure-db.sh \
	  && cargo run -q --bin webhooks -- sweep

bench: db tools bench-tools ## every figure of issues #13 and #25 beside its target, rewriting bench/RESULTS.md (release builds, minutes; BENCH_QUICK=1 for a quick look)
	@echo "bench: the Lambda functions as deployed (-p: without the cli feature), for their size and cold start"
	cargo build --release -p dispatch -p retry-sweep
	@mkdir -p target/bench/lambda && cp target/release/dispatch target/release/retry-sweep target/bench/lambda/
	@# Then everything the bench runs, the functions as `cargo lambda watch --release` builds them
	@# (features unified over the workspace), so the watch starts without compiling.
	@echo "bench: building webhooks, the harness and the functions (release)"
	cargo build --release --bin webhooks --bin bench --bin dispatch --bin retry-sweep
	@export DATABASE_URL="$$(scripts/ensure-db.sh --print-url)"; target/release/bench

bench-baseline: db tools bench-tools ## the drain beside another commit's build, alternating in one run: make bench-baseline BASE=<commit>
	@test -n "$(BASE)" || { echo "usage: make bench-baseline BASE=<commit>" >&2; exit 2; }
	@baseline="$$(bench/baseline.sh $(BASE))" && cargo build --release --bin webhooks --bin bench && \
	  export DATABASE_URL="$$(scripts/ensure-db.sh --print-url)" && \
	  BENCH_BASELINE_WEBHOOKS="$$baseline" BENCH_ONLY=drain BENCH_WRITE=0 target/release/bench

bench-tools: ## install what make bench needs from Debian when missing: nginx, GNU time, pgbench
	@bench/ensure-tools.sh

# Deploy settings (docs/deploy.md): the functions' environment file and extra cargo-lambda flags.
# Timeout and memory are in each function's Cargo.toml, [package.metadata.lambda.deploy].
LAMBDA_ENV_FILE ?= .env.deploy
# release for AWS; debug for a rehearsal against moto (docs/deploy.md): the same packaging and
# calls, minutes sooner, and a binary moto never runs.
BUILD_PROFILE   ?= release
# 1: deploy even with the example's (or loopback) DATABASE_URL / WEBHOOK_URL.
DEPLOY_YES      ?=
DEPLOY_FLAGS    ?=
DISPATCH_FLAGS  ?=
SCHEDULE_FLAGS  ?=
ALARMS_FLAGS    ?=
DASHBOARD_FLAGS ?=

build: tools ## build both functions for Lambda (provided.al2023, x86-64) into target/lambda/ (BUILD_PROFILE=debug for a rehearsal)
	@case "$(BUILD_PROFILE)" in release|debug) ;; *) echo "BUILD_PROFILE must be release or debug, not $(BUILD_PROFILE)" >&2; exit 1 ;; esac
	cargo lambda build $(if $(filter release,$(BUILD_PROFILE)),--release) --x86-64 -p dispatch -p retry-sweep

# A deployment without its alarms fails silently, so deploy applies them too (idempotent), and
# the dashboard beside them.
# It refuses, before building, settings that cannot work in AWS (scripts/check-deploy-env.sh).
deploy: ## deploy both functions with LAMBDA_ENV_FILE (.env.deploy), then apply the schedule, the alarms and the dashboard (refuses the example's settings unless DEPLOY_YES=1)
	@DEPLOY_YES=$(DEPLOY_YES) scripts/check-deploy-env.sh $(LAMBDA_ENV_FILE)
	$(MAKE) build
	cargo lambda deploy dispatch    --env-file $(LAMBDA_ENV_FILE) $(DEPLOY_FLAGS) $(DISPATCH_FLAGS)
	cargo lambda deploy retry-sweep --env-file $(LAMBDA_ENV_FILE) $(DEPLOY_FLAGS)
	$(MAKE) schedule
	$(MAKE) alarms
	$(MAKE) dashboard

schedule: ## create or update the EventBridge schedule of retry-sweep (SCHEDULE_FLAGS=--dry-run previews)
	@echo "schedule: building infra if needed (the first build takes a minute or two), then applying"
	cargo run -q -p infra -- schedule apply $(SCHEDULE_FLAGS)

alarms: ## create or update the CloudWatch alarms (ALARMS_FLAGS=--dry-run previews; WEBHOOK_ALARM_TOPIC_ARN notifies)
	@echo "alarms: building infra if needed (the first build takes a minute or two), then applying"
	cargo run -q -p infra -- alarms apply $(ALARMS_FLAGS)

dashboard: ## create or update the CloudWatch dashboard beside the alarms (DASHBOARD_FLAGS=--dry-run previews)
	@echo "dashboard: building infra if needed (the first build takes a minute or two), then applying"
	cargo run -q -p infra -- dashboard apply $(DASHBOARD_FLAGS)

lint: ## cargo fmt --check and clippy with warnings denied
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
