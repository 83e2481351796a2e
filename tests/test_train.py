"""A debug run of each task goes through the whole path and leaves a complete MLflow record."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from conftest import all_runs, client_for, run_cli

TASKS = {
    "market_regressor": {"metrics": ["test_mse", "test_mae", "test_r2", "baseline_test_mse"],
                         "plot": "predicted_vs_actual.png", "dataset": "market"},
    "mnist_cnn": {"metrics": ["test_acc", "test_f1"], "plot": "confusion_matrix.png",
                  "dataset": "digits"},
    "sentiment_lstm": {"metrics": ["test_acc", "test_f1", "test_auroc", "baseline_test_acc"],
                       "plot": "confusion_matrix.png", "dataset": "reviews"},
}


def output_dir_of(result) -> Path:
    line = next(line for line in result.stdout.splitlines() if line.startswith("outputs: "))
    return Path(line.removeprefix("outputs: ").strip())


@pytest.mark.parametrize("task", sorted(TASKS))
def test_debug_run_is_recorded_and_its_checkpoint_evaluates(
    task: str, train, data_dir: Path, tmp_path: Path, tracking
) -> None:
    result = train(f"experiment={task}", "debug=fast", "seed=3")
    assert result.returncode == 0, result.stderr[-3000:]
    expected = TASKS[task]

    [run] = all_runs(tracking)
    client = client_for(tracking)
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == task
    for metric in expected["metrics"]:
        assert metric in run.data.metrics, sorted(run.data.metrics)
    # per-epoch train and validation metrics, the resolved config as params
    assert client.get_metric_history(run.info.run_id, "val_loss")
    assert client.get_metric_history(run.info.run_id, "train_loss")
    assert run.data.params["task"] == task
    assert run.data.params["trainer.max_epochs"] == "1"
    assert run.data.params["seed"] == "3"
    # lineage tags
    manifest = data_dir / expected["dataset"] / "manifest.json"
    tags = run.data.tags
    assert tags["data.manifest_sha256"] == hashlib.sha256(manifest.read_bytes()).hexdigest()
    assert tags["seed"] == "3"
    assert len(tags["git.sha"]) == 40 or tags["git.sha"] == "unknown"
    assert tags["torch.version"] == torch.__version__
    assert "experiment=" + task in tags["command"]
    # artifacts: config, plots, best checkpoint
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "preprocessing.json", "plots", "checkpoints"} <= artifacts
    plots = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "plots")}
    assert {"learning_curves.png", expected["plot"]} <= plots
    config = client.download_artifacts(run.info.run_id, "config.yaml", str(tmp_path))
    assert f"task: {task}" in Path(config).read_text()

    # the best checkpoint, tested again by `modelyard evaluate`, gives the same test metrics
    output_dir = output_dir_of(result)
    trained = json.loads((output_dir / "metrics.json").read_text())
    evaluated = run_cli(
        "evaluate", f"experiment={task}", "debug=fast", "logger=none",
        f"ckpt_path={output_dir / 'checkpoints' / 'best.ckpt'}",
        f"paths.data_dir={data_dir}", f"paths.output_root={tmp_path}/eval",
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    again = json.loads((output_dir_of(evaluated) / "metrics.json").read_text())
    for metric in expected["metrics"]:
        if not metric.startswith("baseline"):
            assert again[metric] == pytest.approx(trained[metric], abs=1e-6)


def test_same_second_runs_get_their_own_directories_and_same_seed_same_result(
    data_dir: Path, tmp_path: Path
) -> None:
    import subprocess

    from conftest import MODELYARD

    args = [MODELYARD, "train", "experiment=market_regressor", "debug=fast", "logger=none",
            f"paths.data_dir={data_dir}", f"paths.output_root={tmp_path}"]
    processes = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs[0][1][-2000:]
    dirs = [Path(line.removeprefix("outputs: ")) for out, _ in outputs
            for line in out.splitlines() if line.startswith("outputs: ")]
    assert len(set(dirs)) == 2
    metrics = [json.loads((d / "metrics.json").read_text()) for d in dirs]
    assert metrics[0]["test_mse"] == metrics[1]["test_mse"]


def test_user_data_with_own_column_names(data_dir: Path, tmp_path: Path, train, tracking) -> None:
    """A user's own CSVs, other column names, picked by config: trains and is recorded."""
    import pandas as pd

    user = tmp_path / "mine"
    user.mkdir()
    for split in ("train", "val", "test"):
        frame = pd.read_csv(data_dir / "market" / f"{split}.csv")
        frame = frame.rename(columns={"fertility": "births_per_woman", "log_gdp": "size"})
        frame.to_csv(user / f"{split}.csv", index=False)
    result = train("experiment=market_regressor", "debug=fast", f"data.path={user}",
                   "data.features=[births_per_woman,life_expectancy,log_population]",
                   "data.target=size")
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = all_runs(tracking)
    assert run.data.tags["data.manifest_sha256"].startswith("none")
    assert run.data.params["data.target"] == "size"


def test_history_keeps_every_epoch_when_the_best_is_an_early_one(train, tmp_path: Path) -> None:
    # "best" = highest train loss: epoch 1, so testing restores an early checkpoint
    result = train("experiment=market_regressor", "debug=fast", "trainer.max_epochs=3",
                   "monitor.mode=max", "logger=none")
    assert result.returncode == 0, result.stderr[-2000:]
    history = next((tmp_path / "outputs" / "market_regressor").glob("*/history.csv"))
    assert [row.split(",")[0] for row in history.read_text().splitlines()[1:]] == ["1", "2", "3"]
