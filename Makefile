# Reggaeton-or-not: training, serving, monitoring and deployment.
# `make` (or `make help`) lists the targets. Every target creates the venv it needs.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
STAMP := $(VENV)/.installed-stamp

# Local defaults (override on the command line or in the environment).
BENTOML_HOME ?= $(CURDIR)/var/bentoml
MLFLOW_TRACKING_URI ?= sqlite:///$(CURDIR)/var/mlflow.db
PREDICTION_STORE_URI ?= sqlite:///$(CURDIR)/var/predictions.db
HOST ?= 127.0.0.1
PORT ?= 3000
GRPC_PORT ?= 50051
export BENTOML_HOME MLFLOW_TRACKING_URI PREDICTION_STORE_URI GRPC_PORT
export BENTOML_DO_NOT_TRACK := true

# Kubernetes (make deploy / retrain / rollback).
RELEASE ?= reggaeton
NAMESPACE ?= default
VALUES ?= k8s/values-dev.yaml
TOOLS := $(CURDIR)/.tools
HELM = $(shell command -v helm 2>/dev/null || echo $(TOOLS)/helm)
KUBECTL = $(shell command -v kubectl 2>/dev/null || echo $(TOOLS)/kubectl)

ARGS ?=
# Image tag of `make image`: the chart's appVersion (what the chart deploys by default).
APP_VERSION := $(shell awk '/^appVersion:/ {gsub(/"/, "", $$2); print $$2}' charts/reggaeton/Chart.yaml)
# Images (make image / base-image): the base of both images, and a CA bundle to trust during the
# build and at run time (a TLS-intercepting proxy's CA; a certificate, not a secret).
BASE_IMAGE ?= python:3.11-slim
CA_BUNDLE ?=
DEBIAN_BASE_IMAGE ?= reggaeton-base:bookworm

.PHONY: help install serve test test-fast train experiment mlflow-ui monitor score simulate demo \
        build image base-image tools chart-lint manifests deploy retrain rollback bench lint format clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet uv==0.13.9
	$(UV) pip install --python $(PY) --quiet -r requirements.lock
	$(UV) pip install --python $(PY) --quiet --no-deps -e .
	$(PY) -m pip check
	@touch $@

install: $(STAMP) ## Create .venv with the pinned dependencies and the project (editable)

serve: $(STAMP) ## Train a first model if the store is empty, then serve HTTP :3000 and gRPC :50051
	$(PY) -m training.train --if-empty
	@if [ -n "$$API_TOKEN" ]; then echo "API_TOKEN is set: /feedback and admin routes need 'Authorization: Bearer <token>'"; \
	 else echo "API_TOKEN is not set: /feedback and admin routes are open (set API_TOKEN to protect them)"; fi
	$(VENV)/bin/bentoml serve service.service:ReggaetonService --host $(HOST) --port $(PORT)

test: $(STAMP) tools ## Run the whole test suite (unit, integration, slow)
	PATH="$(TOOLS):$$PATH" $(PY) -m pytest $(ARGS)

test-fast: $(STAMP) tools ## Run the tests not marked slow
	PATH="$(TOOLS):$$PATH" $(PY) -m pytest -m "not slow" $(ARGS)

train: $(STAMP) ## Train, evaluate, save a version and promote it if it passes the gate (ARGS="--set k=v")
	$(PY) -m training.train $(ARGS)

experiment: $(STAMP) ## Optuna search (nested CV) + repeated-CV leaderboard with intervals; PROMOTE=1 trains the winner through the gate
	$(PY) -m training.experiment $(if $(PROMOTE),--promote) $(ARGS)

mlflow-ui: $(STAMP) ## Open the MLflow UI on http://127.0.0.1:5000
	$(VENV)/bin/mlflow ui --backend-store-uri "$(MLFLOW_TRACKING_URI)" --host 127.0.0.1 --port 5000

monitor: $(STAMP) ## Run the monitoring job once over the prediction log and print where the report is
	$(PY) -m monitoring.job $(ARGS)

score: $(STAMP) ## Score a catalogue file offline (INPUT=songs.parquet|.csv OUTPUT=scored.parquet|.csv)
	@test -n "$(INPUT)" -a -n "$(OUTPUT)" || { echo "usage: make score INPUT=... OUTPUT=..."; exit 2; }
	$(PY) -m service.score --input "$(INPUT)" --output "$(OUTPUT)" $(ARGS)

simulate: $(STAMP) ## Write simulated traffic into the prediction log (ARGS="--drift tempo=+20")
	$(PY) -m monitoring.simulate $(ARGS)

demo: $(STAMP) ## The closed loop on this laptop: train, serve, traffic, drift, alert, retrain, switch
	$(PY) -m scripts.demo $(ARGS)

build: $(STAMP) ## Build the Bentos: the lean service (bentofile.yaml) and the jobs (k8s/bentofile.jobs.yaml)
	$(PY) -m training.train --if-empty
	$(VENV)/bin/bentoml build
	$(VENV)/bin/bentoml build -f k8s/bentofile.jobs.yaml .

image: build ## Containerize both Bentos as <name>:<chart appVersion> (BASE_IMAGE=..., CA_BUNDLE=...)
	BENTOML=$(VENV)/bin/bentoml BASE_IMAGE="$(BASE_IMAGE)" CA_BUNDLE="$(CA_BUNDLE)" \
	  bash scripts/image.sh $(APP_VERSION)

base-image: ## Build a Debian bookworm + Python 3.11 base from Debian packages (no registry needed)
	bash scripts/base_image.sh $(DEBIAN_BASE_IMAGE)
	@echo "use it with: make image BASE_IMAGE=$(DEBIAN_BASE_IMAGE)"

tools: ## Fetch helm and kubectl into .tools/ unless they are on PATH
	@bash scripts/fetch_tools.sh "$(TOOLS)"

chart-lint: $(STAMP) tools ## helm lint --strict and schema validation of the chart
	PATH="$(TOOLS):$$PATH" bash scripts/chart_lint.sh

manifests: $(STAMP) tools ## Render the chart into k8s/manifests/ for kubectl-only users
	PATH="$(TOOLS):$$PATH" bash scripts/render_manifests.sh

deploy: tools ## helm upgrade --install the chart (VALUES=k8s/values-dev.yaml)
	$(HELM) upgrade --install $(RELEASE) charts/reggaeton -n $(NAMESPACE) --create-namespace -f $(VALUES) --wait $(ARGS)

retrain: tools ## Start a training Job from the train CronJob and follow its logs
	@job=$$(printf %.40s '$(RELEASE)' | sed 's/[-.]*$$//')-retrain-$$(date +%Y%m%d%H%M%S); \
	 $(KUBECTL) -n $(NAMESPACE) create job --from=cronjob/$(RELEASE)-train $$job && \
	 $(KUBECTL) -n $(NAMESPACE) logs -f job/$$job --pod-running-timeout=10m; \
	 $(KUBECTL) -n $(NAMESPACE) wait --for=condition=Complete job/$$job --timeout=120s

rollback: tools ## Roll the serving Deployment back to its previous revision
	$(KUBECTL) -n $(NAMESPACE) rollout undo deployment/$(RELEASE)
	$(KUBECTL) -n $(NAMESPACE) rollout status deployment/$(RELEASE) --timeout=300s

bench: $(STAMP) ## Benchmark this service against MLServer and the original app (prints a table)
	$(PY) -m bench.inference_bench --served
	$(PY) -m bench.run $(ARGS)

lint: $(STAMP) ## ruff check and ruff format --check (also run by `make test`)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP) ## Apply ruff's fixes and formatter
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean: ## Remove the venv, tools, local stores, reports and caches
	rm -rf $(VENV) .tools var reports .pytest_cache .ruff_cache .hypothesis build dist *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
