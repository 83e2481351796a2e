"""Short movie reviews labelled 1 (positive) / 0 (negative): batches of raw strings.

Batches stay strings because the model owns the vocabulary (built here from the train
split only) and encodes them itself, so it takes plain text wherever it is served.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from modelyard.data.base import SplitDataModule
from modelyard.data.tables import read_columns
from modelyard.data.text import build_vocab, word_polarity
from modelyard.errors import DataError


class TextDataset(torch.utils.data.Dataset):
    def __init__(self, texts: list[str], labels: np.ndarray) -> None:
        self.texts, self.labels = texts, labels

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, index: int) -> tuple[str, int]:
        return self.texts[index], int(self.labels[index])


def collate_texts(batch: list[tuple[str, int]]) -> tuple[list[str], torch.Tensor]:
    texts, labels = zip(*batch, strict=True)
    return list(texts), torch.tensor(labels, dtype=torch.int64)


class ReviewsDataModule(SplitDataModule):
    suffix = ".csv"
    dataset_name = "reviews"
    collate_fn = staticmethod(collate_texts)

    def __init__(
        self,
        path: str,
        text_column: str,
        label_column: str,
        min_freq: int,
        max_vocab: int,
        batch_size: int,
        num_workers: int,
        ngram_order: int,
        ngram_min_freq: int,
        classes: list[Any] | None = None,
    ) -> None:
        super().__init__(path, batch_size, num_workers)
        self.classes = list(classes or ["negative", "positive"])  # labels 0 and 1
        self.text_column, self.label_column = text_column, label_column
        self.min_freq, self.max_vocab = min_freq, max_vocab
        self.ngram_order, self.ngram_min_freq = ngram_order, ngram_min_freq

    def load_split(self, file: Path) -> TextDataset:
        frame = read_columns(file, [self.text_column, self.label_column])
        texts, labels = frame[self.text_column], frame[self.label_column]
        if texts.isna().any():
            raise DataError(f"{file}: empty text in column {self.text_column!r}")
        if labels.isna().any() or not labels.isin([0, 1]).all():
            raise DataError(f"{file}: column {self.label_column!r} must hold only 0 or 1")
        return TextDataset(texts.astype(str).tolist(), labels.to_numpy(dtype=np.int64))

    def fitted_inputs(self) -> dict[str, Any]:
        train = self.datasets["train"]
        vocab = build_vocab(train.texts, self.min_freq, self.max_vocab)
        fitted = {"vocab": vocab, "word_polarity": word_polarity(train.texts, train.labels, vocab)}
        if self.ngram_order:  # the n-grams of the model's bag-of-n-grams term, and their prior
            grams = build_vocab(train.texts, self.ngram_min_freq, sys.maxsize, self.ngram_order)
            fitted["ngrams"] = grams
            fitted["ngram_polarity"] = word_polarity(train.texts, train.labels, grams,
                                                     self.ngram_order)
        return fitted

    def texts_and_labels(self, split: str) -> tuple[list[str], np.ndarray]:
        dataset = self.datasets[split]
        return dataset.texts, dataset.labels

    def raw_split(self, split: str) -> tuple[pd.DataFrame, np.ndarray]:
        texts, labels = self.texts_and_labels(split)
        return pd.DataFrame({self.text_column: texts}), labels

    @property
    def target_name(self) -> str:
        return self.label_column

    @property
    def class_names(self) -> list[Any]:
        return self.classes
