"""DDP on CPU (2 processes over gloo) for every task, and a two-node job on loopback: one
MLflow run, written by rank 0, with test metrics equal to a single-process evaluation."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import all_runs, cli_env, client_for, free_port, run_cli

TASKS = {"market_regressor": ("market-regressor", "test_mse"),
         "mnist_cnn": ("mnist-cnn", "test_acc"),
         "sentiment_lstm": ("sentiment-lstm", "test_acc")}
# fit briefly, but test on the whole split: that is what is compared
SHORT = ["debug=fast", "~trainer.limit_test_batches"]


@pytest.mark.slow
@pytest.mark.parametrize("task", sorted(TASKS))
def test_ddp_cpu_gives_one_run_one_checkpoint_and_synced_metrics(
    task: str, train, data_dir: Path, tmp_path: Path, tracking
) -> None:
    name, metric = TASKS[task]
    result = train(f"experiment={task}", "trainer=ddp_cpu", *SHORT, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]

    runs = all_runs(tracking)
    assert len(runs) == 1
    run = runs[0]
    announced = set(re.findall(r"rank (\d)/2: MLflow run ([0-9a-f]{32})", result.stdout))
    assert announced == {("0", run.info.run_id), ("1", run.info.run_id)}
    job_dirs = list((tmp_path / "outputs" / task).iterdir())
    assert len(job_dirs) == 1
    assert sorted(p.name for p in (job_dirs[0] / "checkpoints").iterdir()) == \
        ["best.ckpt", "last.ckpt"]
    assert len(client_for(tracking).search_model_versions(f"name='{name}'")) == 1

    single = run_cli("evaluate", f"experiment={task}", "logger=none",
                     f"ckpt_path={job_dirs[0] / 'checkpoints' / 'best.ckpt'}",
                     f"paths.data_dir={data_dir}", f"paths.output_root={tmp_path}/eval",
                     f"metrics_file={tmp_path}/single.json")
    assert single.returncode == 0, single.stderr[-3000:]
    expected = json.loads((tmp_path / "single.json").read_text())[metric]
    assert run.data.metrics[metric] == pytest.approx(expected, abs=1e-6)


@pytest.mark.slow
def test_two_nodes_on_loopback_make_one_run(data_dir: Path, tmp_path: Path, tracking) -> None:
    port = free_port()
    env = cli_env(tracking)
    nodes = [
        subprocess.Popen(
            [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=1",
             f"--node_rank={rank}", "--master_addr=127.0.0.1", f"--master_port={port}",
             "-m", "modelyard", "train", "experiment=market_regressor", "trainer=multinode",
             "trainer.accelerator=cpu", "trainer.strategy.process_group_backend=gloo",
             *SHORT, f"paths.data_dir={data_dir}", f"paths.output_root={tmp_path}/outputs"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for rank in (0, 1)
    ]
    outputs = [node.communicate(timeout=600)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    runs = all_runs(tracking)
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    announced = set(re.findall(r"rank (\d)/2: MLflow run ([0-9a-f]{32})", "".join(outputs)))
    assert announced == {("0", runs[0].info.run_id), ("1", runs[0].info.run_id)}
