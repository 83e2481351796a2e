"""Lightning callbacks of modelyard's own."""

from __future__ import annotations

import lightning as L


class EpochHistory(L.Callback):
    """Keeps each epoch's train/val metrics in memory, for the learning-curve plot."""

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Runs after the epoch's validation, so callback_metrics holds both stages.
        for key, value in trainer.callback_metrics.items():
            if key.startswith(("train_", "val_")):
                self.history.setdefault(key, []).append(float(value))
