"""The training loop the three tasks share: loss, torchmetrics per stage, optimiser, schedule."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import lightning as L
import torch
from torchmetrics import MetricCollection
from torchmetrics.aggregation import CatMetric, MeanMetric

STAGES = ("train", "val", "test")


class SupervisedModule(L.LightningModule, ABC):
    """Subclasses define the network, `loss`, `scores` (what metrics see) and `make_metrics`."""

    def __init__(self, lr: float, weight_decay: float, scheduler: str) -> None:
        super().__init__()
        if scheduler not in ("none", "cosine", "onecycle"):
            raise ValueError(f"scheduler must be none, cosine or onecycle, got {scheduler!r}")
        self.lr, self.weight_decay, self.scheduler = lr, weight_decay, scheduler
        self.train_metrics_registered = False

    def init_metrics(self) -> None:
        metrics = self.make_metrics()
        # ModuleDict keys may not be "train", which clashes with nn.Module.train.
        self.stage_metrics = torch.nn.ModuleDict(
            {f"{stage}_": metrics.clone(prefix=f"{stage}_") for stage in STAGES}
        )
        self.stage_losses = torch.nn.ModuleDict({f"{stage}_": MeanMetric() for stage in STAGES})
        # Every test (actual, predicted) pair, gathered across processes: plots and tables.
        self.test_actual, self.test_predicted = CatMetric(), CatMetric()

    @abstractmethod
    def make_metrics(self) -> MetricCollection: ...

    @abstractmethod
    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor: ...

    @abstractmethod
    def scores(self, output: torch.Tensor) -> torch.Tensor:
        """Network output -> what the metrics take (predictions or probabilities)."""

    @abstractmethod
    def predict_from_scores(self, scores: torch.Tensor) -> torch.Tensor:
        """Scores -> the prediction a user sees (a value, or a class index)."""

    def on_train_epoch_start(self) -> None:
        # registered on the epoch's first step run, which is not batch 0 after a mid-epoch resume
        self.train_metrics_registered = False

    def on_test_epoch_start(self) -> None:
        self.test_actual.reset()
        self.test_predicted.reset()

    def on_test_batch(self, scores: torch.Tensor, target: torch.Tensor) -> None:
        self.test_actual.update(target.float())
        self.test_predicted.update(self.predict_from_scores(scores).float())

    def on_test_epoch_end(self) -> None:
        # Gathered here, while every rank is still in the test loop: gathering is collective.
        self.test_pairs = {"actual": self.test_actual.compute().cpu().tolist(),
                           "predicted": self.test_predicted.compute().cpu().tolist()}

    def test_table(self) -> dict[str, list[float]]:
        """The last test run's pairs (from every rank) as columns `actual` and `predicted`."""
        return self.test_pairs

    def _step(self, batch: Any, stage: str, batch_idx: int) -> torch.Tensor:
        inputs, target = batch
        output = self(inputs)
        loss = self.loss(output, target)
        scores = self.scores(output).detach()
        metrics = self.stage_metrics[f"{stage}_"]
        metrics.update(scores, target)
        if stage == "test":
            self.on_test_batch(scores, target)
        batch_size = len(target)
        losses = self.stage_losses[f"{stage}_"]
        losses.update(loss.detach(), weight=batch_size)
        if stage != "train" or not self.train_metrics_registered:
            # Metric objects are only registered by `log`; Lightning computes them over the
            # whole epoch at its end. Registering them once per training epoch, not every
            # step, keeps Lightning's per-call bookkeeping off the training step (bench/).
            self.log(f"{stage}_loss", losses, on_step=False, on_epoch=True,
                     batch_size=batch_size, prog_bar=stage != "test")
            self.log_dict(metrics, on_step=False, on_epoch=True, batch_size=batch_size,
                          prog_bar=stage == "val")
            if stage == "train":
                self.train_metrics_registered = True
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train", batch_idx)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "val", batch_idx)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, "test", batch_idx)

    def configure_optimizers(self) -> dict:
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        if self.scheduler == "none":
            return {"optimizer": optimizer}
        steps = int(self.trainer.estimated_stepping_batches)
        if self.scheduler == "onecycle":
            schedule = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=self.lr, total_steps=steps
            )
        else:
            schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


class ClassifierModule(SupervisedModule, ABC):
    """The shared loop for class predictions (class indices; the data names the classes)."""

    def test_table(self) -> dict[str, list[int]]:
        return {column: [int(v) for v in values] for column, values in super().test_table().items()}
