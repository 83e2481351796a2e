"""Country indicators -> market potential (log GDP). Features stay raw here: the model
standardises them with train-split statistics it carries, so it takes raw inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from modelyard.data.base import BatchedTensors, SplitDataModule
from modelyard.data.tables import read_columns
from modelyard.errors import DataError


class MarketDataModule(SplitDataModule):
    suffix = ".csv"
    dataset_name = "market"

    def __init__(
        self, path: str, features: list[str], target: str, batch_size: int, num_workers: int
    ) -> None:
        super().__init__(path, batch_size, num_workers)
        self.features = list(features)
        self.target = target
        self.frames: dict[str, pd.DataFrame] = {}  # as read, with the CSV's own column types

    def load_split(self, file: Path) -> BatchedTensors:
        frame = read_columns(file, [*self.features, self.target])
        try:
            values = frame.to_numpy(dtype=np.float32)
        except ValueError as err:
            raise DataError(f"{file}: non-numeric value in features or target ({err})") from None
        bad = ~np.isfinite(values)
        if bad.any():
            row, col = map(int, np.argwhere(bad)[0])
            raise DataError(
                f"{file}: {int(bad.sum())} NaN/inf value(s), first in column "
                f"{frame.columns[col]!r} at data row {row + 1}"
            )
        self.frames[file.stem] = frame
        x, y = torch.from_numpy(values[:, :-1]), torch.from_numpy(values[:, -1])
        return BatchedTensors(x, y)

    def fitted_inputs(self) -> dict[str, Any]:
        x, y = self.datasets["train"].tensors
        std = x.std(dim=0, unbiased=False)
        return {
            "feature_names": self.features,
            "feature_mean": x.mean(dim=0).tolist(),
            "feature_std": torch.where(std > 0, std, torch.ones_like(std)).tolist(),
            "target_mean": float(y.mean()),
            "target_std": float(y.std(unbiased=False)) or 1.0,
        }

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(features, target) of a split as numpy, for baselines and plots."""
        x, y = self.datasets[split].tensors
        return x.numpy(), y.numpy()
