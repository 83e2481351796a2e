"""The classic MNIST network: two 5x5 conv + max-pool blocks, fc1024, dropout, 10-way output."""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassF1Score,
)

from modelyard.models.base import ClassifierModule

NUM_CLASSES = 10


class DigitCNN(ClassifierModule):
    def __init__(
        self,
        pixel_mean: float,
        pixel_std: float,
        channels: list[int],
        kernel_size: int,
        fc_units: int,
        dropout: float,
        lr: float,
        weight_decay: float,
        scheduler: str,
    ) -> None:
        super().__init__(lr, weight_decay, scheduler)
        self.save_hyperparameters(logger=False)
        blocks: list[nn.Module] = []
        in_channels, side = 1, 28
        for out_channels in channels:
            blocks += [
                nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
            in_channels, side = out_channels, side // 2
        self.features = nn.Sequential(*blocks)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_channels * side * side, fc_units),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(fc_units, NUM_CLASSES),
        )
        self.init_metrics()

    def make_metrics(self) -> MetricCollection:
        return MetricCollection(
            {
                "acc": MulticlassAccuracy(NUM_CLASSES, average="micro"),
                "f1": MulticlassF1Score(NUM_CLASSES, average="macro"),
            }
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 1, 28, 28) pixels in [0, 1] -> (B, 10) logits."""
        x = (images - self.hparams.pixel_mean) / self.hparams.pixel_std
        return self.classifier(self.features(x))

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(output, target)

    def scores(self, output: torch.Tensor) -> torch.Tensor:
        return output.softmax(dim=-1)

    def predict_from_scores(self, scores: torch.Tensor) -> torch.Tensor:
        return scores.argmax(dim=-1)
