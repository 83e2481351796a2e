"""A researcher's own data through a shipped task, as the README's own-data recipe runs it:
train, then promote and predict with nothing repeated on their command lines. The version's
record (task.json) gives the gate its data and policy: columns and target of the user's data,
a bound relative to the baselines on the same split (the shipped floor is in other units),
and served outputs named after the user's target.

Real data shipped by packages: scikit-learn's diabetes table (442 patients, a disease
progression score) and the shipped Rotten Tomatoes reviews in columns of other names."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split

from conftest import client_for, run_cli

pytestmark = pytest.mark.slow


def write_splits(frame: pd.DataFrame, directory: Path, stratify: str | None = None) -> Path:
    train, test = train_test_split(frame, test_size=0.2, random_state=0,
                                   stratify=frame[stratify] if stratify else None)
    train, val = train_test_split(train, test_size=0.2, random_state=0,
                                  stratify=train[stratify] if stratify else None)
    directory.mkdir(parents=True)
    for name, split in {"train": train, "val": val, "test": test}.items():
        split.to_csv(directory / f"{name}.csv", index=False)
    return directory


def test_own_table_promotes_on_its_own_baseline_and_serves_its_own_target(
        tmp_path: Path, tracking: dict[str, str]) -> None:
    diabetes = load_diabetes(as_frame=True).frame.rename(columns={"target": "progression"})
    mine = write_splits(diabetes, tmp_path / "diabetes")
    features = [c for c in diabetes.columns if c != "progression"]
    trained = run_cli("train", "experiment=market_regressor", f"data.path={mine}",
                      f"data.features=[{','.join(features)}]", "data.target=progression",
                      f"paths.output_root={tmp_path}/outputs", env=tracking, timeout=600)
    assert trained.returncode == 0, trained.stderr[-3000:]
    name = "market-regressor-diabetes"
    assert f"registered: models:/{name}/1" in trained.stdout

    # evaluate reads the data the model file was trained on, not the task's own
    [model_file] = (tmp_path / "outputs").rglob("model.ckpt")
    evaluated = run_cli("evaluate", "experiment=market_regressor", f"ckpt_path={model_file}",
                        "logger=none", f"metrics_file={tmp_path}/metrics.json",
                        f"paths.output_root={tmp_path}/outputs", env=tracking)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    trained_metrics = json.loads((model_file.parent / "metrics.json").read_text())
    tested = json.loads((tmp_path / "metrics.json").read_text())
    assert tested["test_mse"] == pytest.approx(trained_metrics["test_mse"], rel=1e-6)

    def gate(*overrides: str):
        promoted = run_cli("models", "promote", name, *overrides, env=tracking)
        assert promoted.returncode in (0, 3), promoted.stdout + promoted.stderr[-2000:]
        tags = client_for(tracking).get_model_version(name, "1").tags
        return promoted.returncode, json.loads(tags["promotion.policy"]), tags

    # a bound far below least squares' own MSE on this split: rejected, nothing moved
    code, policy, tags = gate("registry.policy.baseline_margin=0.5")
    baseline = float(tags["metric.baseline_least_squares_test_mse"])
    assert code == 3 and policy["bound"] == pytest.approx(0.5 * baseline, rel=1e-5)
    assert "champion" not in client_for(tracking).get_registered_model(name).aliases
    # the recorded policy: no floor (market's 1.0 is in log-GDP units, not this data's),
    # within 1% of least squares fitted on the same split
    code, policy, tags = gate()
    assert policy["floor"] is None and policy["baseline"] == "least_squares"
    assert policy["bound"] == pytest.approx(1.01 * baseline, rel=1e-5)
    score = float(tags["promotion.challenger_score"])
    assert (code == 0) == (score <= policy["bound"])
    refused = run_cli("models", "promote", name, "data.path=/elsewhere", env=tracking)
    assert refused.returncode == 2 and "registry.policy.<key>" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1

    rows = pd.read_csv(mine / "test.csv").drop(columns="progression").head(4)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    predicted = run_cli("predict", name, str(tmp_path / "rows.csv"), "--alias", "challenger",
                        env=tracking)
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    assert list(pd.read_csv(io.StringIO(predicted.stdout)).columns) == ["progression"]


def test_own_texts_in_other_columns_promote_and_serve(
        tmp_path: Path, data_dir: Path, tracking: dict[str, str]) -> None:
    mine = tmp_path / "my_reviews"
    mine.mkdir()
    for split in ("train", "val", "test"):
        frame = pd.read_csv(data_dir / "reviews" / f"{split}.csv")
        frame = frame.rename(columns={"text": "review", "label": "fresh"})
        frame.head(1500 if split == "train" else 400).to_csv(mine / f"{split}.csv", index=False)
    trained = run_cli("train", "experiment=sentiment_lstm", f"data.path={mine}",
                      "data.text_column=review", "data.label_column=fresh", "debug=fast",
                      f"paths.output_root={tmp_path}/outputs", env=tracking, timeout=600)
    assert trained.returncode == 0, trained.stderr[-3000:]
    name = "sentiment-lstm-my_reviews"
    promoted = run_cli("models", "promote", name, "registry.policy.baseline=null",
                       env=tracking)  # a debug-sized model; what matters: no column errors
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr[-2000:]
    (tmp_path / "two.txt").write_text("a warm, funny, moving film\ntedious and flat\n")
    predicted = run_cli("predict", name, str(tmp_path / "two.txt"), env=tracking)
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    frame = pd.read_csv(io.StringIO(predicted.stdout))
    assert list(frame.columns) == ["fresh", "probability_positive"]
    assert set(frame.fresh) <= {"negative", "positive"}
    policy = json.loads(client_for(tracking).get_model_version(name, "1").tags["promotion.policy"])
    assert policy["floor"] is None and policy["metric"] == "accuracy_score"
