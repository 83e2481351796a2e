"""The default experiments, at full length, meet the quality the project promises.

The figures are the DVC pipeline's own (`metrics/<task>.json`, written by `evaluate@<task>`
from the full trainings `dvc repro` ran), so the bars hold for what `make run` produces and
CI trains each model once, not twice. Run `make run` before `make test-slow`; `.ci/run` does.
"""

from __future__ import annotations

import json

import pytest

from conftest import ROOT, dvc


@pytest.fixture(scope="module")
def pipeline_metrics() -> dict[str, dict[str, float]]:
    status = dvc("status", "--json", cwd=ROOT)
    stale = json.loads(status.stdout or "{}")
    assert not stale, f"the pipeline is not up to date (run `make run` first): {sorted(stale)}"
    return {path.stem: json.loads(path.read_text())
            for path in (ROOT / "metrics").glob("*.json")}


@pytest.mark.slow
def test_market_regressor_is_within_one_percent_of_least_squares(pipeline_metrics) -> None:
    market = pipeline_metrics["market_regressor"]
    assert abs(market["test_mse"] / market["baseline_least_squares_test_mse"] - 1) <= 0.01


@pytest.mark.slow
def test_mnist_cnn_reaches_97_5_percent(pipeline_metrics) -> None:
    assert pipeline_metrics["mnist_cnn"]["test_acc"] >= 0.975


@pytest.mark.slow
def test_sentiment_lstm_beats_tfidf_and_is_within_a_point_of_nbsvm(pipeline_metrics) -> None:
    """The pipeline's run scores 0.7935 (AUROC 0.8594); other seeds of the same settings give
    0.779-0.784, so the bars leave about a point and a half (README, Sweeps)."""
    lstm = pipeline_metrics["sentiment_lstm"]
    assert lstm["test_acc"] >= 0.78
    assert lstm["test_auroc"] >= 0.85
    assert lstm["test_acc"] >= lstm["baseline_tfidf_lr_test_acc"]
    assert lstm["test_acc"] >= lstm["baseline_nbsvm_test_acc"] - 0.01
