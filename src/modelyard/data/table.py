"""A table of named feature columns and one target column: a value to regress on, or (with
`classification: true`) a label whose classes are the train split's distinct values.

Features stay raw here: the model standardises them with train-split statistics it carries, so
the served model takes the table as a client has it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from modelyard.data.base import BatchedTensors, SplitDataModule
from modelyard.data.tables import read_columns
from modelyard.errors import DataError


class TableDataModule(SplitDataModule):
    suffix = ".csv"

    def __init__(self, path: str, features: list[str], target: str, batch_size: int,
                 num_workers: int, classification: bool = False) -> None:
        super().__init__(path, batch_size, num_workers)
        self.features = list(features)
        self.target = target
        self.classification = classification
        self.classes: list[Any] | None = None  # from the train split (read first)
        self.frames: dict[str, pd.DataFrame] = {}  # as read, with the CSV's own column types

    def load_split(self, file: Path) -> BatchedTensors:
        frame = read_columns(file, [*self.features, self.target])
        self.frames[file.stem] = frame
        # a value target is read with the features, as one array (its float32 views are what
        # the model and the least-squares baseline have always been given)
        numeric = self.features if self.classification else [*self.features, self.target]
        try:
            values = frame[numeric].to_numpy(dtype=np.float32)
        except ValueError as err:
            raise DataError(f"{file}: non-numeric value in features or target ({err})") from None
        bad = ~np.isfinite(values)
        if bad.any():
            row, col = map(int, np.argwhere(bad)[0])
            raise DataError(
                f"{file}: {int(bad.sum())} NaN/inf value(s), first in column "
                f"{numeric[col]!r} at data row {row + 1}"
            )
        if self.classification:
            return BatchedTensors(torch.from_numpy(values), self.labels(file, frame[self.target]))
        return BatchedTensors(torch.from_numpy(values[:, :-1]), torch.from_numpy(values[:, -1]))

    def labels(self, file: Path, column: pd.Series) -> torch.Tensor:
        """Class indices; the classes are the train split's labels, sorted."""
        if column.isna().any():
            raise DataError(f"{file}: empty label in column {self.target!r} at data row "
                            f"{int(np.flatnonzero(column.isna())[0]) + 1}")
        if file.stem == "train":
            self.classes = sorted(column.unique().tolist())
            if len(self.classes) < 2:
                raise DataError(f"{file}: column {self.target!r} holds one class "
                                f"({self.classes}); a classifier needs two or more")
        index = {label: i for i, label in enumerate(self.classes or [])}
        unknown = sorted({str(v) for v in column if v not in index})
        if unknown:
            raise DataError(f"{file}: label(s) {', '.join(unknown[:5])} in column "
                            f"{self.target!r} are not in the train split's classes")
        return torch.tensor([index[v] for v in column], dtype=torch.int64)

    def fitted_inputs(self) -> dict[str, Any]:
        x, y = self.datasets["train"].tensors
        std = x.std(dim=0, unbiased=False)
        fitted = {
            "feature_names": self.features,
            "feature_mean": x.mean(dim=0).tolist(),
            "feature_std": torch.where(std > 0, std, torch.ones_like(std)).tolist(),
        }
        if self.classification:
            return {**fitted, "class_names": list(self.classes or [])}
        return {**fitted, "target_mean": float(y.mean()),
                "target_std": float(y.std(unbiased=False)) or 1.0}

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(features, target) of a split as numpy, for baselines and plots."""
        x, y = self.datasets[split].tensors
        return x.numpy(), y.numpy()

    def raw_split(self, split: str) -> tuple[pd.DataFrame, np.ndarray]:
        return self.frames[split][self.features], self.datasets[split].tensors[1].numpy()

    @property
    def target_name(self) -> str:
        return self.target

    @property
    def class_names(self) -> list[Any] | None:
        return self.classes if self.classification else None
