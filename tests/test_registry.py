"""A finished training logs a pyfunc model that takes raw inputs and registers it as
`challenger`, with its lineage on the version; the same weights never make a new version."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelyard.config import compose
from modelyard.registry.register import model_name

from conftest import client_for, run_cli

# Run in a fresh process: the registered model must load from the registry alone.
PREDICT = r"""
import json, sys
import numpy as np, pandas as pd, mlflow
from mlflow.exceptions import MlflowException
name, data_dir = sys.argv[1], sys.argv[2]
model = mlflow.pyfunc.load_model(f"models:/{name}@challenger")
out = {}
if name == "mnist-cnn":
    images = np.load(f"{data_dir}/digits/test.npz")["images"][:4]
    as_uint8 = model.predict(images)
    as_float = model.predict(images.astype(np.float32).reshape(4, 784))  # 0-255 either way
    single = model.predict(images[0])  # one image, no batch axis
    out["columns"] = list(as_uint8.columns)
    out["same"] = (as_uint8["digit"].tolist() == as_float["digit"].tolist()
                   and single["digit"].tolist() == as_uint8["digit"].tolist()[:1])
    out["sums"] = as_uint8[[f"p{d}" for d in range(10)]].sum(axis=1).round(4).tolist()
    bad = [np.full((2, 28, 28), np.nan), np.full((1, 28, 28), 300.0)]
elif name == "sentiment-lstm":
    frame = model.predict(["a moving, beautiful film", "dull and lifeless"])  # a plain list
    out["columns"] = list(frame.columns)
    out["labels"] = sorted(set(frame["label"]))
    bad = [pd.DataFrame({"text": [""]}), pd.DataFrame({"text": []}, dtype=str), [None], [42]]
else:
    rows = pd.read_csv(f"{data_dir}/market/test.csv").head(3)
    frame = model.predict(rows)  # extra columns (country, year, ...) are fine
    out["columns"] = list(frame.columns)
    out["finite"] = bool(np.isfinite(frame["log_gdp"]).all())
    bad = [rows.drop(columns=["fertility"]), rows.assign(fertility=np.nan),
           rows.assign(life_expectancy=-500.0)]
out["errors"] = []
for payload in bad:
    try:
        model.predict(payload)
        out["errors"].append(None)
    except MlflowException as err:
        out["errors"].append(str(err).splitlines()[0])
print(json.dumps(out))
"""

CASES = {
    "market_regressor": ("market-regressor", ["log_gdp"]),
    "mnist_cnn": ("mnist-cnn", ["digit", *[f"p{d}" for d in range(10)]]),
    "sentiment_lstm": ("sentiment-lstm", ["label", "probability_positive"]),
}


def sample_file(task: str, data_dir: Path, tmp_path: Path) -> Path:
    """What a user would hand to `modelyard predict`: a CSV, a PNG digit, a text file."""
    if task == "market_regressor":
        return data_dir / "market" / "test.csv"
    if task == "mnist_cnn":
        import numpy as np
        from PIL import Image

        image = np.load(data_dir / "digits" / "test.npz")["images"][0]
        Image.fromarray(image).save(tmp_path / "digit.png")
        return tmp_path / "digit.png"
    (tmp_path / "reviews.txt").write_text("a triumph of a film\nboring and far too long\n")
    return tmp_path / "reviews.txt"


@pytest.mark.parametrize("task", sorted(CASES))
def test_model_name_is_the_task_s_for_the_shipped_data(task: str, tmp_path: Path) -> None:
    cfg = compose("train", [f"experiment={task}", f"paths.data_dir={tmp_path}/data"])
    assert model_name(cfg) == CASES[task][0]


def test_other_data_gets_a_model_of_its_own_and_a_set_name_wins(tmp_path: Path) -> None:
    shipped = [f"paths.data_dir={tmp_path}/data"]
    mine = compose("train", ["experiment=market_regressor", *shipped,
                             f"data.path={tmp_path}/mine"])
    assert model_name(mine) == "market-regressor-mine"  # never the shipped model
    named = compose("train", ["experiment=market_regressor", *shipped,
                              f"data.path={tmp_path}/mine", "registry.name=gdp"])
    assert model_name(named) == "gdp"
    spelled = compose("train", ["experiment=market_regressor", *shipped,
                                f"data.path={tmp_path}/data/../data/market"])
    assert model_name(spelled) == "market-regressor"  # the same directory, however spelled


@pytest.mark.slow
@pytest.mark.parametrize("task", sorted(CASES))
def test_registered_challenger_takes_raw_inputs_in_a_fresh_process(
    task: str, train, data_dir: Path, tmp_path: Path, tracking
) -> None:
    name, columns = CASES[task]
    result = train(f"experiment={task}", "debug=fast")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"registered: models:/{name}/1" in result.stdout

    client = client_for(tracking)
    version = client.get_model_version_by_alias(name, "challenger")
    assert str(version.version) == "1"
    run = client.get_run(version.tags["source_run"])
    assert run.data.tags["modelyard.task"] == task
    assert version.tags["data.manifest_sha256"] == run.data.tags["data.manifest_sha256"]
    assert version.tags["git.sha"] == run.data.tags["git.sha"]
    assert len(version.tags["config_sha256"]) == 64
    assert any(k.startswith("metric.test_") for k in version.tags)

    scored = subprocess.run(
        [sys.executable, "-c", PREDICT, name, str(data_dir)], capture_output=True, text=True,
        env={**os.environ, **tracking}, timeout=300,
    )
    assert scored.returncode == 0, scored.stderr[-3000:]
    out = json.loads(scored.stdout.strip().splitlines()[-1])
    assert out["columns"] == columns
    assert all(error for error in out["errors"]), out["errors"]  # every malformed input refused
    # `modelyard predict` scores a file offline with the same model
    predicted = run_cli("predict", name, str(sample_file(task, data_dir, tmp_path)),
                        "--alias", "challenger", env=tracking)
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    assert predicted.stdout.splitlines()[0].split(",") == columns
    if task == "mnist_cnn":
        assert out["same"] and all(abs(s - 1) < 1e-3 for s in out["sums"])
    elif task == "sentiment_lstm":
        assert set(out["labels"]) <= {"positive", "negative"}
    else:
        assert out["finite"]


@pytest.mark.slow
def test_same_weights_register_once_and_list_shows_the_version(train, tracking) -> None:
    for _ in range(2):  # CPU training with a fixed seed is deterministic: identical weights
        result = train("experiment=market_regressor", "debug=fast", "seed=5")
        assert result.returncode == 0, result.stderr[-3000:]
    client = client_for(tracking)
    versions = client.search_model_versions("name='market-regressor'")
    assert [str(v.version) for v in versions] == ["1"]

    listed = run_cli("models", "list", env=tracking)
    assert listed.returncode == 0, listed.stderr
    assert "market-regressor" in listed.stdout and "challenger" in listed.stdout

    unregistered = train("experiment=market_regressor", "debug=fast", "seed=6",
                         "registry.register=false")
    assert unregistered.returncode == 0, unregistered.stderr[-3000:]
    assert len(client.search_model_versions("name='market-regressor'")) == 1


@pytest.mark.slow
def test_models_register_makes_a_trained_file_the_challenger_once(
    train, data_dir: Path, tmp_path: Path, tracking
) -> None:
    """Training without registering, then `modelyard models register`: the file becomes a
    version of its training run; registering it again changes nothing."""
    trained = train("experiment=mnist_cnn", "debug=fast", "registry.register=false")
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "registered:" not in trained.stdout
    client = client_for(tracking)
    assert client.search_registered_models() == []
    [model_file] = (tmp_path / "outputs" / "mnist_cnn").glob("*/model.ckpt")

    def register() -> subprocess.CompletedProcess:
        # options before the task, as the usage line puts them: after the task, argparse
        # leaves the overrides that follow an option unrecognised
        return run_cli("models", "register", "--model-file", str(model_file), "mnist_cnn",
                       f"paths.data_dir={data_dir}", env=tracking)

    first = register()
    assert first.returncode == 0, first.stderr[-3000:]
    assert "registered: models:/mnist-cnn/1 (challenger)" in first.stdout
    version = client.get_model_version("mnist-cnn", "1")
    [run] = client.search_runs([client.get_experiment_by_name("mnist_cnn").experiment_id])
    assert version.tags["source_run"] == run.info.run_id  # found by its weights
    assert version.tags["weights_sha256"] == run.data.tags["weights_sha256"]
    again = register()
    assert again.returncode == 0, again.stderr[-3000:]
    assert "registered: models:/mnist-cnn/1 (challenger)" in again.stdout
    assert len(client.search_model_versions("name='mnist-cnn'")) == 1


@pytest.mark.slow
def test_promotion_gate_audit_trail_and_rollback(train, tracking) -> None:
    """First champion, a better challenger promoted, a worse one rejected, then rollback."""
    name = "market-regressor"
    client = client_for(tracking)
    # debug models are far from the real floor: the test relaxes it, the gate stays the same
    loose = ["registry.policy.floor=1e9", "registry.policy.baseline=null"]

    def promote() -> subprocess.CompletedProcess:
        return run_cli("models", "promote", name, *loose, env=tracking)

    def champion() -> str:
        return str(client.get_model_version_by_alias(name, "champion").version)

    assert train("experiment=market_regressor", "debug=fast").returncode == 0
    first = promote()
    assert first.returncode == 0, first.stderr[-2000:]
    assert "PROMOTED" in first.stdout and champion() == "1"

    longer = train("experiment=market_regressor", "debug=fast", "trainer.max_epochs=4")
    assert longer.returncode == 0
    better = promote()
    assert better.returncode == 0, better.stdout + better.stderr[-2000:]
    assert champion() == "2"
    assert client.get_model_version(name, "2").tags["promotion.previous_champion"] == "1"

    assert train("experiment=market_regressor", "debug=fast", "model.lr=1e-6").returncode == 0
    worse = promote()
    assert worse.returncode == 3, worse.stdout + worse.stderr[-2000:]
    assert "REJECTED" in worse.stdout and champion() == "2"
    rejected = client.get_model_version(name, "3").tags
    assert rejected["promotion.decision"] == "rejected"
    assert rejected["promotion.champion_version"] == "2"
    scores = [float(rejected[f"promotion.{role}_score"]) for role in ("challenger", "champion")]
    assert scores[0] > scores[1]  # mean squared error: the challenger is worse
    assert client.get_model_version(name, "2").tags["challenged_by.v3"] == "rejected"

    rolled = run_cli("models", "rollback", name, env=tracking)
    assert rolled.returncode == 0, rolled.stderr[-2000:]
    assert champion() == "1"
    assert "rollback.demoted_at" in client.get_model_version(name, "2").tags
    nothing_left = run_cli("models", "rollback", name, env=tracking)
    assert nothing_left.returncode == 2 and "replaced no earlier champion" in nothing_left.stderr
