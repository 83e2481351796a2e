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
def test_sentiment_lstm_beats_both_baselines_on_accuracy(pipeline_metrics) -> None:
    """With its bag of n-grams the LSTM scored 0.7939-0.7959 over seeds 1, 2, 3 and 42 where
    NBSVM scores 0.7912 (README, Sweeps); its AUROC (0.865-0.867) is NBSVM's within 0.003."""
    lstm = pipeline_metrics["sentiment_lstm"]
    assert lstm["test_acc"] >= 0.79
    assert lstm["test_acc"] > lstm["baseline_nbsvm_test_acc"]
    assert lstm["test_acc"] > lstm["baseline_tfidf_lr_test_acc"]
    assert lstm["test_auroc"] >= lstm["baseline_nbsvm_test_auroc"] - 0.01
