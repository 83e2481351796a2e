"""A job killed with SIGKILL resumes from its last checkpoint into the same MLflow run: every
metric step recorded once, and the final metrics equal an uninterrupted run's."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conftest import MODELYARD, cli_env, run_cli

JOB = ["train", "experiment=mnist_cnn", "trainer.max_epochs=4", "+trainer.limit_train_batches=15",
       "+trainer.limit_val_batches=4", "+trainer.limit_test_batches=4"]


def only_run(store: str):
    client = MlflowClient(store)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == 1
    return client, runs[0]


def lr_points(client: MlflowClient) -> list:
    try:
        runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    except Exception:  # the store is still being created
        return []
    return client.get_metric_history(runs[0].info.run_id, "lr-AdamW") if runs else []


def history(client: MlflowClient, run) -> dict[str, list[tuple[int, float]]]:
    return {key: sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key))
            for key in run.data.metrics}


@pytest.mark.slow
def test_sigkilled_training_resumes_into_the_same_run_with_the_same_result(
    data_dir: Path, tmp_path: Path
) -> None:
    def where(name: str) -> tuple[list[str], dict[str, str]]:
        return ([f"paths.data_dir={data_dir}", f"paths.output_root={tmp_path}/{name}"],
                {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/{name}.db"})

    paths, env = where("straight")
    assert run_cli(*JOB, *paths, env=env, timeout=600).returncode == 0
    client, straight = only_run(env["MLFLOW_TRACKING_URI"])

    paths, env = where("killed")
    job = subprocess.Popen([MODELYARD, *JOB, *paths], env=cli_env(env),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Kill once epoch 2 has begun: its first metric point (the learning rate) is recorded, but
    # the newest checkpoint is epoch 1's, so the resumed job replays that step.
    store = MlflowClient(env["MLFLOW_TRACKING_URI"])
    while len(lr_points(store)) < 2:  # pytest-timeout bounds the wait
        assert job.poll() is None
        time.sleep(0.05)
    job.send_signal(signal.SIGKILL)
    assert job.wait(timeout=60) == -signal.SIGKILL
    client_k, killed = only_run(env["MLFLOW_TRACKING_URI"])
    assert killed.info.status == "RUNNING"

    resumed = run_cli(*JOB, *paths, "resume=true", env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    client_k, after = only_run(env["MLFLOW_TRACKING_URI"])
    assert after.info.run_id == killed.info.run_id and after.info.status == "FINISHED"
    assert after.data.tags["resumed_from"].endswith("last.ckpt")

    expected, got = history(client, straight), history(client_k, after)
    assert got.keys() == expected.keys()
    for key in expected:
        assert [step for step, _ in got[key]] == [step for step, _ in expected[key]], key
    for key, value in straight.data.metrics.items():
        if key.startswith("test_"):
            assert after.data.metrics[key] == pytest.approx(value, abs=1e-6), key
