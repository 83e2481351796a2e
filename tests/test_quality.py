"""The default experiments, at full length, meet the quality the project promises.

Slow (a few minutes on 2 cores): run with `make test-slow`; CI runs it on every change.
"""

from __future__ import annotations

import time

import pytest

from conftest import all_runs


@pytest.mark.slow
@pytest.mark.timeout(1800)  # ~2.5 min alone; far longer when the machine is shared
def test_default_trainings_meet_their_quality_bars(train, tracking) -> None:
    seconds = {}
    for task in ("market_regressor", "mnist_cnn", "sentiment_lstm"):
        start = time.perf_counter()
        result = train(f"experiment={task}", timeout=900)
        seconds[task] = time.perf_counter() - start
        assert result.returncode == 0, result.stderr[-3000:]
    runs = {run.data.tags["modelyard.task"]: run.data.metrics for run in all_runs(tracking)}
    print("training seconds:", {k: round(v) for k, v in seconds.items()})
    print({task: {k: round(v, 4) for k, v in m.items() if "test" in k} for task, m in runs.items()})

    market = runs["market_regressor"]
    assert abs(market["test_mse"] / market["baseline_test_mse"] - 1) <= 0.01
    assert runs["mnist_cnn"]["test_acc"] >= 0.975
    assert runs["sentiment_lstm"]["test_acc"] >= 0.77
