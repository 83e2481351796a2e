"""What every DataModule shares: a directory of train/val/test files, checked on load, and
what the rest of modelyard asks of any dataset (its target's name, its classes, a split as a
client would send it)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch import distributed as dist
from torch.utils.data import DataLoader, Dataset, TensorDataset

from modelyard.data import manifest
from modelyard.errors import DataError

SPLITS = ("train", "val", "test")


class BatchedTensors(TensorDataset):
    """In-memory tensors the DataLoader reads a whole batch at a time: one indexing per tensor
    instead of one per row followed by a stack, which made the loader, not the model, the
    slow part of training the regressor (bench/). Same samplers, same rows, same order."""

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, ...]:
        return tuple(tensor[indices] for tensor in self.tensors)

    @staticmethod
    def collate(batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        return batch  # already a batch


class SplitDataModule(L.LightningDataModule, ABC):
    """Reads `<path>/{train,val,test}<suffix>`; subclasses say how to read one file."""

    suffix: str = ""
    dataset_name: str = ""

    def __init__(self, path: str, batch_size: int, num_workers: int) -> None:
        super().__init__()
        self.path = Path(path)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.datasets: dict[str, Dataset] = {}
        self.manifest_sha256: str | None = None

    # -- subclass API -------------------------------------------------------------
    @abstractmethod
    def load_split(self, file: Path) -> Dataset:
        """Read and validate one split file."""

    def fitted_inputs(self) -> dict[str, Any]:
        """What the model needs from the train split (statistics, vocabulary)."""
        return {}

    @abstractmethod
    def raw_split(self, split: str) -> tuple[Any, Any]:
        """A split as a client would send it to the served model (a table of named columns,
        images as stored, plain strings) and its targets: values, or class indices."""

    @property
    def target_name(self) -> str:
        """What the model predicts, as the data names it (served outputs, plots)."""
        return "value"

    @property
    def class_names(self) -> list[Any] | None:
        """The label of each class index; None for a regression target."""
        return None

    collate_fn: Callable | None = None

    # -- Lightning hooks ----------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        if not self.path.is_dir():
            raise DataError(
                f"{self.path}: no such data directory; run `modelyard prepare "
                f"{self.dataset_name}` or set data.path to a directory with "
                f"train/val/test{self.suffix}"
            )
        self.manifest_sha256 = manifest.verify(self.path)
        self.datasets = {split: self.load_split(self.split_file(split)) for split in SPLITS}

    def split_file(self, split: str) -> Path:
        file = self.path / f"{split}{self.suffix}"
        if not file.exists():
            raise DataError(f"{file}: missing data file")
        return file

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        dataset, sampler = self.datasets[split], None
        if not shuffle and dist.is_available() and dist.is_initialized():
            # Lightning's DistributedSampler pads the split so every rank gets equal batches,
            # which would count some val/test samples twice; this one splits them exactly.
            sampler = UnrepeatedDistributedSampler(dataset, shuffle=False)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            collate_fn=dataset.collate if isinstance(dataset, BatchedTensors) else self.collate_fn,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
