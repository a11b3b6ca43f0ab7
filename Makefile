# Sluice developer commands. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

.PHONY: venv
venv: $(STAMP) ## Create the virtualenv and install Sluice with its dev tools

.PHONY: run
run: $(STAMP) ## Start local mode on examples/quickstart (the API on 127.0.0.1:8080)
	$(BIN)/sluice local up -f examples/quickstart

.PHONY: test
test: lint test-fast e2e ## Set up and run every test tier (lint, unit, component, contract, e2e)

.PHONY: test-fast
test-fast: $(STAMP) ## Unit, component and contract tests
	$(BIN)/pytest tests/unit tests/component tests/contract

.PHONY: e2e
e2e: $(STAMP) ## End-to-end tests on a real API server (builds the control plane once, cached)
	tests/e2e/cluster/build-control-plane.sh >/dev/null
	$(BIN)/pytest tests/e2e

.PHONY: lint
lint: $(STAMP) ## ruff, mypy (strict) and the import-layer contracts
	$(BIN)/ruff check operator tests
	$(BIN)/ruff format --check operator tests
	$(BIN)/mypy
	$(BIN)/lint-imports

.PHONY: fmt
fmt: $(STAMP) ## Format and autofix
	$(BIN)/ruff format operator tests
	$(BIN)/ruff check --fix operator tests

.PHONY: crds
crds: $(STAMP) ## Regenerate crds/ from the models
	$(BIN)/sluice crds --output-dir crds

.PHONY: bench
bench: $(STAMP) ## Run the benchmarks in tests/bench (prints ratios against in-process baselines)
	@for bench in tests/bench/bench_*.py; do echo "== $$bench"; $(BIN)/python -m tests.bench.$$(basename $$bench .py) || exit 1; done

.PHONY: clean
clean: ## Remove the virtualenv and caches (not the control-plane build cache)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
