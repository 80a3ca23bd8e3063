# Development tasks. `make` or `make help` lists them.
VENV    ?= .venv
BIN     := $(VENV)/bin
PY      := $(BIN)/python
COMPOSE ?= docker-compose
# Benchmark modules run by `make bench` (python -m benchmarks.<name>), each against its
# named baseline in the same run; e.g. make bench BENCH_ARGS='--output benchmarks/RESULTS.md'
BENCHMARKS ?= job_overhead
BENCH_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install demo stack test lint fmt bench docs docs-check compose-check

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  %-14s %s\n", $$1, $$2}'

install: ## Create .venv and install the package with the dev tools (editable)
	python3 -m venv $(VENV)
	$(BIN)/pip install -e '.[dev]'

demo: ## Run `cipml demo`: ingest the bundled CDNOW file end to end, no servers needed
	$(BIN)/cipml demo

stack: ## Run `cipml stack`: a worker, beat and (with Redis) Flower; Ctrl-C stops all
	$(BIN)/cipml stack

test: ## Run the tests (Redis on 127.0.0.1:6379, PostgreSQL on 127.0.0.1:5432; see README)
	$(PY) -m pytest

lint: ## ruff check, ruff format --check, mypy, import-linter layer contract
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: ## Format the code and apply ruff's safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: ## Run the benchmarks (Redis + PostgreSQL as for tests; BENCHMARKS, BENCH_ARGS)
	@for name in $(BENCHMARKS); do \
		echo "== benchmarks.$$name"; \
		$(PY) -m benchmarks.$$name $(BENCH_ARGS) || exit 1; \
	done

docs: ## Regenerate the settings table in README.md from workers/settings.py
	$(PY) docs/gen_settings_table.py

docs-check: ## Fail if the settings table in README.md is stale
	$(PY) docs/gen_settings_table.py --check

# FLOWER_BASIC_AUTH is required by the file; a placeholder is enough to validate it.
compose-check: ## Validate docker-compose.yml, both profiles (needs docker-compose, no engine)
	FLOWER_BASIC_AUTH=$${FLOWER_BASIC_AUTH:-check:check} $(COMPOSE) -f docker-compose.yml config --quiet
	FLOWER_BASIC_AUTH=$${FLOWER_BASIC_AUTH:-check:check} $(COMPOSE) -f docker-compose.yml --profile dashboard config --quiet
