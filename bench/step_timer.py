"""A Lightning callback the benchmark adds to `modelyard train` from the command line
(`+callbacks.bench_timer._target_=step_timer.StepTimer`): when each training step starts,
and how long each epoch's training loop takes. Nothing in the product depends on it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import lightning as L


class StepTimer(L.Callback):
    def __init__(self, out: str) -> None:
        self.out = Path(out)
        self.step_starts: list[float] = []  # wall clock (time.time) at each train batch start
        self.epoch_seconds: list[float] = []
        self._epoch_start = 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.step_starts.append(time.time())

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._epoch_start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.epoch_seconds.append(time.perf_counter() - self._epoch_start)

    def on_train_end(self, trainer, pl_module) -> None:
        self.out.write_text(json.dumps({"step_starts": self.step_starts,
                                        "epoch_seconds": self.epoch_seconds}))
