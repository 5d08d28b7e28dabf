# Booking webhooks: every target has a `## ` comment; `make` (or `make help`) lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Postgres for migrate/test/listen. `make db` finds or starts one and prints the URL it uses.
PG_LOCAL_URL ?= postgres://postgres@127.0.0.1:5432/test
DATABASE_URL ?=
# Python tools (cargo-lambda, moto) live in one venv under target/, never system-wide.
VENV        := target/venv
VENV_BIN    := $(abspath $(VENV))/bin
export PATH := $(VENV_BIN):$(PATH)

.PHONY: help db migrate test lint tools

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

db: ## make sure a Postgres is reachable (DATABASE_URL, else 127.0.0.1:5432, else a throwaway cluster in target/)
	@scripts/ensure-db.sh

migrate: db ## apply migrations/ to DATABASE_URL with refinery (`webhooks migrate`)
	@export DATABASE_URL="$$(scripts/ensure-db.sh --print-url)"; cargo run -q --bin webhooks -- migrate

tools: $(VENV_BIN)/moto_server $(VENV_BIN)/cargo-lambda ## install cargo-lambda and moto server into target/venv

$(VENV_BIN)/python:
	python3 -m venv $(VENV)
	$(VENV_BIN)/pip install -q --upgrade pip

$(VENV_BIN)/moto_server: | $(VENV_BIN)/python
	$(VENV_BIN)/pip install -q 'moto[server]>=5,<6'

$(VENV_BIN)/cargo-lambda: | $(VENV_BIN)/python
	$(VENV_BIN)/pip install -q 'cargo-lambda>=1.9,<2'

test: db tools ## run every test (unit + integration) against a real Postgres, receivers and moto
	@export DATABASE_URL="$$(scripts/ensure-db.sh --print-url)"; cargo nextest run --workspace --no-fail-fast

lint: ## cargo fmt --check and clippy with warnings denied
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
