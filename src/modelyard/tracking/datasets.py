"""The data a run read, as MLflow datasets: one per split, named after the dataset and split,
sourced by its repo-relative path and DVC md5 so the reference outlives any workspace."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.data.dataset import Dataset
from mlflow.data.dataset_source import DatasetSource

CONTEXTS = {"train": "train", "val": "validation", "test": "test"}


class DvcDatasetSource(DatasetSource):
    """A data file in a DVC-versioned directory: where it is in the repository, and which
    version (the directory's DVC md5, when DVC tracks it)."""

    def __init__(self, path: str, md5: str | None) -> None:
        self.path, self.md5 = path, md5

    @staticmethod
    def _get_source_type() -> str:
        return "dvc"

    def load(self) -> str:
        return self.path

    @staticmethod
    def _can_resolve(raw_source: Any) -> bool:
        return False  # built explicitly, never guessed from a string

    @classmethod
    def _resolve(cls, raw_source: Any) -> DvcDatasetSource:
        raise NotImplementedError("a DVC source is built from its path and md5, never resolved "
                                  "from a string (_can_resolve is always False)")

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "md5": self.md5}

    @classmethod
    def from_dict(cls, source_dict: dict[str, Any]) -> DvcDatasetSource:
        return cls(source_dict["path"], source_dict.get("md5"))


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def split_dataset(file: Path, relative_path: str, md5: str | None, name: str) -> Dataset:
    """One split file (CSV table, or NPZ of images and labels) as an MLflow dataset."""
    import mlflow.data

    source = DvcDatasetSource(relative_path, md5)
    digest = file_digest(file)
    if file.suffix == ".npz":
        with np.load(file) as arrays:
            return mlflow.data.from_numpy(arrays["images"], source=source,
                                          targets=arrays["labels"], name=name, digest=digest)
    with warnings.catch_warnings():
        # the schema records a year as an integer column, which is what the file holds
        warnings.filterwarnings("ignore", "Hint: Inferred schema contains integer",
                                module="mlflow.types.utils")
        return mlflow.data.from_pandas(pd.read_csv(file), source=source, name=name,
                                       digest=digest)


def split_datasets(datamodule: Any, data_path: str, md5: str | None) -> dict[str, Dataset]:
    """{MLflow context: dataset} for the train, validation and test splits."""
    return {
        context: split_dataset(file := datamodule.split_file(split), f"{data_path}/{file.name}",
                               md5, f"{datamodule.dataset_name}-{split}")
        for split, context in CONTEXTS.items()
    }
