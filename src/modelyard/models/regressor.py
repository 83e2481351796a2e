"""Market potential from country indicators: a linear model on standardised features."""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection, R2Score

from modelyard.models.base import SupervisedModule


class Standardize(nn.Module):
    """(x - mean) / std with the train split's statistics stored as buffers."""

    def __init__(self, mean: list[float], std: list[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class MarketRegressor(SupervisedModule):
    def __init__(
        self,
        feature_names: list[str],
        feature_mean: list[float],
        feature_std: list[float],
        target_mean: float,
        target_std: float,
        hidden_sizes: list[int],
        lr: float,
        weight_decay: float,
        scheduler: str,
    ) -> None:
        super().__init__(lr, weight_decay, scheduler)
        self.save_hyperparameters(logger=False)
        layers: list[nn.Module] = [Standardize(feature_mean, feature_std)]
        width = len(feature_names)
        for hidden in hidden_sizes:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)
        self.init_metrics()

    def make_metrics(self) -> MetricCollection:
        return MetricCollection(
            {"mse": MeanSquaredError(), "mae": MeanAbsoluteError(), "r2": R2Score()}
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw indicators (B, F) -> log GDP (B,). The net works in standard units both ways
        so that Adam's step size suits every weight, the intercept included."""
        return self.net(x).squeeze(-1) * self.hparams.target_std + self.hparams.target_mean

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(output, target)

    def scores(self, output: torch.Tensor) -> torch.Tensor:
        return output

    def predict_from_scores(self, scores: torch.Tensor) -> torch.Tensor:
        return scores
