"""Metrics are batched and logged asynchronously (conf/logger/mlflow.yaml), yet nothing is
lost: a flush stores every held point at once or raises, and a checkpoint on disk means every
step before it is already in MLflow, even when the job is killed right after writing it."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from modelyard.tracking.logger import ResumableMLFlowLogger

from conftest import MODELYARD, cli_env

LONG_BUFFER = 600  # seconds the logger would hold points back without a flush


def test_flush_stores_every_queued_point_at_once(store: str) -> None:
    logger = ResumableMLFlowLogger(experiment_name="flush", tracking_uri=store,
                                   synchronous=False, buffer_seconds=LONG_BUFFER)
    for step in range(50):
        logger.log_metrics({"loss": 1.0 / (step + 1), "lr": 0.1}, step=step)
    client = MlflowClient(store)
    assert client.get_metric_history(logger.run_id, "loss") == []  # held back: long buffer
    logger.flush()  # sends them now, and returns once the store has every one
    assert [m.step for m in client.get_metric_history(logger.run_id, "loss")] == list(range(50))
    assert [m.step for m in client.get_metric_history(logger.run_id, "lr")] == list(range(50))


def test_a_point_the_store_refuses_fails_the_flush(store: str) -> None:
    logger = ResumableMLFlowLogger(experiment_name="refused", tracking_uri=store,
                                   synchronous=False, buffer_seconds=LONG_BUFFER)
    logger.log_metrics({"loss": 1.0}, step=0)
    logger.flush()
    MlflowClient(store).delete_run(logger.run_id)  # a deleted run takes no more points
    logger.log_metrics({"loss": 0.5}, step=1)
    with pytest.raises(MlflowException):
        logger.flush()


@pytest.mark.slow
def test_a_checkpoint_on_disk_means_its_steps_are_recorded(data_dir: Path, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/mlflow.db"
    job = subprocess.Popen(
        [MODELYARD, "train", "experiment=market_regressor", f"paths.data_dir={data_dir}",
         f"paths.output_root={tmp_path}/outputs", "trainer.max_epochs=1000",
         "trainer.log_every_n_steps=1", "callbacks.lr_monitor.logging_interval=step",
         f"logger.buffer_seconds={LONG_BUFFER}", "registry.register=false"],
        env=cli_env({"MLFLOW_TRACKING_URI": store}),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not list((tmp_path / "outputs").rglob("last.ckpt")):  # pytest-timeout bounds it
        assert job.poll() is None
        time.sleep(0.02)
    job.send_signal(signal.SIGKILL)
    assert job.wait(timeout=60) == -signal.SIGKILL

    client = MlflowClient(store)
    [run] = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert run.info.status == "RUNNING"  # killed: only the checkpoint's flush wrote these
    steps_per_epoch = 20  # 4,999 train rows in batches of 256
    lr_steps = {m.step for m in client.get_metric_history(run.info.run_id, "lr-AdamW")}
    assert set(range(steps_per_epoch)) <= lr_steps
