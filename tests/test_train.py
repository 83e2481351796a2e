"""A debug run of each task goes through the whole path: test metrics, the files a job leaves
in its output directory (metrics.json, history.csv, the exported model.ckpt) and a complete
MLflow record (params, lineage tags, datasets, figures, the model file)."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import pytest
import torch
from omegaconf import DictConfig

from modelyard.config import compose
from modelyard.training.callbacks import RUN_ID_KEY
from modelyard.training.export import load_model, weights_sha256
from modelyard.training.train import TrainResult, train

from conftest import (
    all_runs,
    cached_client,
    client_for,
    git,
    run_cli,
    runs_in,
    train_overrides,
    working_directory,
)

TASKS = {
    "market_regressor": {"metrics": ["test_mse", "test_mae", "test_r2",
                                     "baseline_least_squares_test_mse"],
                         "plot": "predicted_vs_actual.png", "dataset": "market",
                         "suffix": ".csv"},
    "mnist_cnn": {"metrics": ["test_acc", "test_f1"], "plot": "confusion_matrix.png",
                  "dataset": "digits", "suffix": ".npz"},
    "sentiment_lstm": {"metrics": ["test_acc", "test_f1", "test_auroc",
                                   "baseline_tfidf_lr_test_acc", "baseline_nbsvm_test_auroc"],
                       "plot": "confusion_matrix.png", "dataset": "reviews", "suffix": ".csv"},
}
SPLITS = {"train": "train", "validation": "val", "test": "test"}  # MLflow context: split


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def assert_run_artifacts(client, run_id: str, task: str, plot: str, tmp_path: Path) -> None:
    """The run holds its config, preprocessing, checkpoint and both figures."""
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"config.yaml", "preprocessing.json", "plots", "checkpoints"} <= artifacts
    plots = {Path(a.path).name for a in client.list_artifacts(run_id, "plots")}
    assert {"learning_curves.png", plot} <= plots
    config = client.download_artifacts(run_id, "config.yaml", str(tmp_path))
    assert f"task: {task}" in Path(config).read_text()


def train_in(project: Path, task: str, output_dir: Path, *overrides: str,
             tracking_uri: str | None = None,
             callbacks: list[L.Callback] | None = None) -> tuple[DictConfig, TrainResult]:
    """`train(cfg)` in this process, standing in `project` as a user of it would."""
    with working_directory(project):
        cfg = compose("train", train_overrides(task, output_dir, *overrides,
                                               tracking_uri=tracking_uri))
        return cfg, train(cfg, extra_callbacks=callbacks)


# -- in-process: train(cfg) ---------------------------------------------------------------


@dataclass
class Trained:
    task: str
    output_dir: Path
    result: TrainResult
    tracking_uri: str


@pytest.fixture(scope="module")
def module_store(empty_store: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """One store for the three tasks' runs, as a project has: one experiment per task."""
    path = tmp_path_factory.mktemp("store") / "mlflow.db"
    path.write_bytes(empty_store.read_bytes())
    return f"sqlite:///{path}"


@pytest.fixture(scope="module", params=sorted(TASKS))
def trained(request: pytest.FixtureRequest, project: Path, module_store: str,
            tmp_path_factory: pytest.TempPathFactory) -> Trained:
    task = request.param
    output_dir = tmp_path_factory.mktemp(task) / "job"
    _, result = train_in(project, task, output_dir, "seed=3", tracking_uri=module_store)
    return Trained(task, output_dir, result, module_store)


def test_debug_training_returns_test_metrics_and_writes_its_outputs(trained: Trained) -> None:
    expected, out, result = TASKS[trained.task], trained.output_dir, trained.result
    for metric in expected["metrics"]:
        assert metric in result.metrics, sorted(result.metrics)
    assert json.loads((out / "metrics.json").read_text()) == pytest.approx(result.metrics)

    history = read_csv(out / "history.csv")
    assert [row["epoch"] for row in history] == ["1"]  # debug=fast: one epoch
    assert {"train_loss", "val_loss"} <= set(history[0])

    # the best weights, exported: loadable without pickled code, hashed as the result says
    assert result.model_file == out / "model.ckpt"
    payload = torch.load(result.model_file, map_location="cpu", weights_only=True)
    assert weights_sha256(payload["state_dict"]) == result.weights_sha256
    assert weights_sha256(result.model.state_dict()) == result.weights_sha256
    reloaded = load_model(type(result.model), result.model_file)
    assert weights_sha256(reloaded.state_dict()) == result.weights_sha256
    # Lightning's own last.ckpt, what `resume=true` reads, loads without unpickling code too:
    # optimiser, loops, callbacks, the RNG states and the MLflow run are plain data
    last = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert {"optimizer_states", "loops", "callbacks", "rng_states"} <= set(last)
    assert last[RUN_ID_KEY] == result.run_id
    # figures go to MLflow only, never into the output directory
    assert not list(out.rglob("*.png"))


def test_debug_training_is_recorded_in_mlflow(trained: Trained, project: Path,
                                              tmp_path: Path) -> None:
    task, expected, result = trained.task, TASKS[trained.task], trained.result
    client = cached_client(trained.tracking_uri)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == task
    for metric in expected["metrics"]:
        assert run.data.metrics[metric] == pytest.approx(result.metrics[metric], rel=1e-6)
    # per-epoch train and validation metrics, the resolved config as params
    assert client.get_metric_history(run.info.run_id, "val_loss")
    assert client.get_metric_history(run.info.run_id, "train_loss")
    assert run.data.params["task"] == task
    assert run.data.params["trainer.max_epochs"] == "1"
    assert run.data.params["seed"] == "3"

    # lineage tags: the project's commit, its data by a project-relative path and by hash
    dataset = expected["dataset"]
    manifest = project / "data" / dataset / "manifest.json"
    tags = run.data.tags
    assert tags["git.sha"] == git("rev-parse", "HEAD", cwd=project)
    assert tags["git.dirty"] == "false"
    assert tags["data.path"] == f"data/{dataset}"
    assert tags["data.manifest_sha256"] == hashlib.sha256(manifest.read_bytes()).hexdigest()
    assert tags["seed"] == "3"
    assert tags["modelyard.task"] == task
    assert tags["torch.version"] == torch.__version__
    assert tags["weights_sha256"] == result.weights_sha256

    # what the UI shows first: a readable name, the config behind a short tag, a description
    assert re.fullmatch(rf"{task} · [0-9a-f]{{6}}", run.info.run_name)  # no overrides in-process
    assert tags["config"] == f"runs:/{run.info.run_id}/config.yaml"
    assert f"runs/{run.info.run_id}/artifactPath/config.yaml" in tags["mlflow.note.content"]
    assert f"`data/{dataset}`" in tags["mlflow.note.content"]

    # the three splits as MLflow datasets: named, sourced by repo-relative path, digested
    inputs = {next(t.value for t in i.tags if t.key == "mlflow.data.context"): i.dataset
              for i in run.inputs.dataset_inputs}
    assert set(inputs) == set(SPLITS)
    for context, split in SPLITS.items():
        file = project / "data" / dataset / f"{split}{expected['suffix']}"
        logged = inputs[context]
        assert logged.name == f"{dataset}-{split}"
        assert logged.source_type == "dvc"
        assert json.loads(logged.source)["path"] == f"data/{dataset}/{file.name}"
        assert logged.digest == hashlib.sha256(file.read_bytes()).hexdigest()[:16]

    # artifacts: config, preprocessing, figures, and the very model file the job wrote
    assert_run_artifacts(client, run.info.run_id, task, expected["plot"], tmp_path)
    model = client.download_artifacts(run.info.run_id, "checkpoints/model.ckpt", str(tmp_path))
    assert Path(model).read_bytes() == result.model_file.read_bytes()


def test_same_seed_gives_the_same_model_file_byte_for_byte(project: Path,
                                                          tmp_path: Path) -> None:
    results = [train_in(project, "market_regressor", tmp_path / name, "seed=5")[1]
               for name in ("first", "second")]
    assert results[0].weights_sha256 == results[1].weights_sha256
    assert results[0].metrics == results[1].metrics
    assert results[0].model_file.read_bytes() == results[1].model_file.read_bytes()


def test_history_keeps_every_epoch_when_the_best_is_an_early_one(project: Path,
                                                                tmp_path: Path) -> None:
    # "best" = highest train loss: epoch 1, so testing restores an early checkpoint
    train_in(project, "market_regressor", tmp_path / "job", "trainer.max_epochs=3",
             "monitor.mode=max")
    history = read_csv(tmp_path / "job" / "history.csv")
    assert [row["epoch"] for row in history] == ["1", "2", "3"]


def test_user_data_with_own_column_names(data_dir: Path, project: Path, tmp_path: Path,
                                         store: str) -> None:
    """A user's own CSVs, other column names, picked by config: trains and is recorded."""
    import pandas as pd

    user = tmp_path / "mine"
    user.mkdir()
    for split in ("train", "val", "test"):
        frame = pd.read_csv(data_dir / "market" / f"{split}.csv")
        frame = frame.rename(columns={"fertility": "births_per_woman", "log_gdp": "size"})
        frame.to_csv(user / f"{split}.csv", index=False)
    train_in(project, "market_regressor", tmp_path / "job", f"data.path={user}",
             "data.features=[births_per_woman,life_expectancy,log_population]",
             "data.target=size", tracking_uri=store)
    [run] = runs_in(store)
    assert run.info.status == "FINISHED"
    assert run.data.tags["data.manifest_sha256"].startswith("none")
    assert run.data.tags["data.path"] == str(user)  # outside the project: absolute
    assert run.data.params["data.target"] == "size"


# -- the `modelyard` command (subprocesses) ------------------------------------------------


def output_dir_of(result) -> Path:
    line = next(line for line in result.stdout.splitlines() if line.startswith("outputs: "))
    return Path(line.removeprefix("outputs: ").strip())


@pytest.mark.slow
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
    assert_run_artifacts(client, run.info.run_id, task, expected["plot"], tmp_path)

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


@pytest.mark.slow
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
