"""Lightning callbacks of modelyard's own."""

from __future__ import annotations

import random
from typing import Any

import lightning as L
import numpy as np
import torch

RUN_ID_KEY = "mlflow_run_id"  # top-level checkpoint key: read before any logger exists


class EpochHistory(L.Callback):
    """Keeps each epoch's train/val metrics for the learning-curve plot; checkpointed, so a
    resumed job still plots every epoch."""

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Runs after the epoch's validation, so callback_metrics holds both stages.
        for key, value in trainer.callback_metrics.items():
            if key.startswith(("train_", "val_")):
                self.history.setdefault(key, []).append(float(value))

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = state_dict["history"]


class ResumableRun(L.Callback):
    """What a job needs to carry on after a crash exactly where it stopped.

    - Every rank learns rank 0's MLflow run id (ranks > 0 never open MLflow), and every
      checkpoint carries it, so `resume=true` continues the same run.
    - The logger's held metrics are stored before a checkpoint is written, and again when the
      next epoch starts: an epoch's end-of-epoch metrics are logged after its checkpoint, and
      a job resumed from that checkpoint does not replay them. So a crash only ever loses
      points of steps the resumed job runs again.
    - The random number generators are checkpointed: Lightning restores weights, optimiser and
      loops but not RNGs, and without them the next epoch's shuffle would differ.
    """

    def __init__(self) -> None:
        self.run_id: str | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        own = getattr(trainer.logger, "run_id", None) if trainer.is_global_zero else None
        self.run_id = trainer.strategy.broadcast(own, src=0)
        if trainer.world_size > 1 and stage == "fit":
            print(f"rank {trainer.global_rank}/{trainer.world_size}: MLflow run {self.run_id}",
                  flush=True)

    @staticmethod
    def store_logged_metrics(trainer: L.Trainer) -> None:
        flush = getattr(trainer.logger, "flush", None)  # modelyard's MLflow logger has one
        if flush:
            flush()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.store_logged_metrics(trainer)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        self.store_logged_metrics(trainer)
        checkpoint[RUN_ID_KEY] = self.run_id
        kind, keys, position, has_gauss, gauss = np.random.get_state()
        # plain tensors, lists and numbers: the checkpoint stays loadable with weights_only
        checkpoint["rng_states"] = {
            "torch": torch.get_rng_state(),
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss],
            "python": random.getstate(),
        }

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        states = checkpoint.get("rng_states")
        if states:
            torch.set_rng_state(states["torch"])
            kind, keys, position, has_gauss, gauss = states["numpy"]
            np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
            random.setstate(states["python"])


class BestValue(L.Callback):
    """The best value of the monitored validation metric (the trial's objective), and the
    trial's MLflow run, known even when the trial is pruned."""

    def __init__(self, metric: str, maximize: bool) -> None:
        self.metric, self.maximize, self.best = metric, maximize, None
        self.run_id: str | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.run_id = getattr(trainer.logger, "run_id", None)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.metric not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.metric])
        if self.best is None or (value > self.best if self.maximize else value < self.best):
            self.best = value
