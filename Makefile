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
	tests/e2e/kstatus/build.sh >/dev/null
	tests/e2e/cluster/install-helm.sh >/dev/null
	$(BIN)/pytest tests/e2e

.PHONY: cluster-up
cluster-up: $(STAMP) ## Start a local test cluster in the background; prints its kubeconfig
	tests/e2e/cluster/build-control-plane.sh >/dev/null
	$(BIN)/python -m tests.e2e.cluster up

.PHONY: cluster-down
cluster-down: $(STAMP) ## Stop the cluster started by cluster-up
	$(BIN)/python -m tests.e2e.cluster down

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
crds: $(STAMP) ## Regenerate crds/ and docs/resources.md from the models
	$(BIN)/sluice crds --output-dir crds --docs docs/resources.md

IMAGE_REPO ?= sluice
IMAGE_TAG ?= dev
IMAGE := $(IMAGE_REPO):$(IMAGE_TAG)
KIND_CLUSTER ?= sluice
CONTAINER_ENGINE ?= docker

.PHONY: image
image: ## Build the container image (IMAGE_REPO=sluice IMAGE_TAG=dev) with docker (CONTAINER_ENGINE=podman works too)
	$(CONTAINER_ENGINE) build -t $(IMAGE) .

.PHONY: kind-up
kind-up: image ## Create a kind cluster, load the image and helm install Sluice into sluice-system
	kind get clusters | grep -qx '$(KIND_CLUSTER)' || kind create cluster --name $(KIND_CLUSTER)
	kind load docker-image $(IMAGE) --name $(KIND_CLUSTER)
	helm upgrade --install sluice charts/sluice --namespace sluice-system --create-namespace \
	  --kube-context kind-$(KIND_CLUSTER) --wait \
	  --set image.repository=$(IMAGE_REPO) --set image.tag=$(IMAGE_TAG)

.PHONY: chart-crds
chart-crds: ## Copy crds/ into the chart (charts/sluice/files/crds); a contract test checks the copy
	rm -f charts/sluice/files/crds/*.yaml
	cp crds/*.yaml charts/sluice/files/crds/

.PHONY: chart-lint
chart-lint: $(STAMP) ## helm lint --strict, the values render matrix and the GitOps health checks
	HELM="$$(tests/e2e/cluster/install-helm.sh)" && "$$HELM" lint --strict charts/sluice
	$(BIN)/pytest tests/contract/test_chart.py tests/contract/test_gitops.py

.PHONY: bench
bench: $(STAMP) ## Run the benchmarks in tests/bench (prints ratios against in-process baselines)
	@for bench in tests/bench/bench_*.py; do echo "== $$bench"; $(BIN)/python -m tests.bench.$$(basename $$bench .py) || exit 1; done

.PHONY: clean
clean: ## Remove the virtualenv and caches (not the control-plane build cache)
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
