"""Serving kinds: how a served model of one kind of input (a table, images, texts) takes raw
inputs, turns them into what its network's `forward` takes, and says what the network scored.

A task declares its kind (`registry.serving.kind` in its experiment config); everything the
kind needs to know of the task comes from the version's record (registry/record.py): the
target's name and the classes, which name the outputs, and the input contract fitted on the
train split (columns and ranges, image shape, text column). A new kind of input is one
subclass, `class Audio(Kind, kind="audio")`, in any module the model's code imports (its model
file, say): declaring it is what makes it known.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema
from mlflow.types.schema import AnyType

from modelyard.registry.contract import (
    OUT_OF_RANGE_COLUMN,
    Limits,
    checked_images,
    checked_table,
    checked_texts,
    table_contract,
)

REGRESSOR, CLASSIFIER = "regressor", "classifier"  # mlflow.models.evaluate's model types


def probability_column(label: Any, binary: bool) -> str:
    """`probability_<label>` of a binary classifier's positive class; `p<label>` of each class
    of a multi-class one (`p_<label>` for a label that is not a number)."""
    if binary:
        return f"probability_{label}"
    return f"p{label}" if isinstance(label, int | np.integer) else f"p_{label}"


class Kind(ABC):
    """A served model of one kind: the network, the version's record, the input limits and
    the contract. Subclasses say how raw inputs are checked and become network inputs
    (`network_inputs`), and what the train split says a plausible input is (`input_contract`)."""

    known: ClassVar[dict[str, type[Kind]]] = {}
    name: ClassVar[str] = ""

    def __init_subclass__(cls, kind: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if kind:
            cls.name = kind
            Kind.known[kind] = cls

    def __init__(self, model: Any, record: dict[str, Any], limits: Limits | None = None,
                 contract: dict[str, Any] | None = None) -> None:
        self.model, self.record = model, record
        self.limits = limits or Limits()
        self.contract = contract or {}

    # -- serving ------------------------------------------------------------------------
    @abstractmethod
    def network_inputs(self, model_input: Any) -> tuple[Any, list[str] | None]:
        """Checked raw input -> what the network takes, and per-row flags (or None)."""

    def predict(self, model_input: Any) -> pd.DataFrame:
        import torch

        inputs, flags = self.network_inputs(model_input)
        with torch.inference_mode():
            scores = self.model.scores(self.model(inputs)).numpy()
        frame = outputs(scores, self.record["target"], self.record.get("classes"))
        if flags is not None:
            frame[OUT_OF_RANGE_COLUMN] = flags
        return frame

    # -- registration: what the train split says, how the version describes itself -------
    @classmethod
    def refuses(cls, datamodule: Any) -> str | None:
        """Why this kind cannot serve a model of this data (None: it can)."""
        return None

    @staticmethod
    def input_contract(datamodule: Any) -> dict[str, Any]:
        """What the train split says about plausible inputs (kept with the version)."""
        return {}

    @staticmethod
    def input_schema(datamodule: Any) -> Schema | None:
        """The signature's inputs; None leaves every check to the model's own contract."""
        return None

    @classmethod
    def signature(cls, datamodule: Any) -> ModelSignature:
        return ModelSignature(inputs=cls.input_schema(datamodule),
                              outputs=output_schema(datamodule.target_name,
                                                    datamodule.class_names))

    @staticmethod
    def example(datamodule: Any) -> Any:
        inputs, _ = datamodule.raw_split("test")
        return inputs[:2]


def outputs(scores: np.ndarray, target: str, classes: list[Any] | None) -> pd.DataFrame:
    """Network scores as the served table: the target (named as the data names it) and, for
    classes, each one's probability."""
    if not classes:
        return pd.DataFrame({target: scores})
    probabilities = scores if scores.ndim == 2 else np.stack([1 - scores, scores], axis=1)
    binary = len(classes) == 2
    index = (probabilities[:, 1] >= 0.5).astype(int) if binary else probabilities.argmax(axis=1)
    frame = pd.DataFrame({target: np.asarray(classes, dtype=object)[index]})
    if all(isinstance(c, int) for c in classes):
        frame[target] = frame[target].astype(np.int64)
    for i, label in enumerate(classes):
        if binary and i == 0:
            continue
        frame[probability_column(label, binary)] = probabilities[:, i]
    return frame


def output_schema(target: str, classes: list[Any] | None) -> Schema:
    if not classes:
        return Schema([ColSpec("double", target)])
    label = "long" if all(isinstance(c, int) for c in classes) else "string"
    binary = len(classes) == 2
    return Schema([ColSpec(label, target)] + [
        ColSpec("double", probability_column(c, binary))
        for i, c in enumerate(classes) if not (binary and i == 0)])


def model_type(record: dict[str, Any]) -> str:
    return CLASSIFIER if record.get("classes") else REGRESSOR


def predicted(frame: pd.DataFrame, record: dict[str, Any]) -> np.ndarray:
    """A served table's predictions as the test split's targets are: values, or class indices."""
    column = frame[record["target"]]
    if not record.get("classes"):
        return column.to_numpy()
    index = {label: i for i, label in enumerate(record["classes"])}
    return column.map(index).to_numpy(dtype=np.int64)


def kind_named(name: str) -> type[Kind]:
    from modelyard.errors import ConfigError

    if name not in Kind.known:
        raise ConfigError(f"unknown serving kind {name!r}: one of {', '.join(sorted(Kind.known))}"
                          " (or a `Kind` subclass declared with kind=... in the model's module)")
    return Kind.known[name]


class Table(Kind, kind="table"):
    """A table of the named feature columns (extra columns ignored); values checked against
    the train split's ranges, whole numbers and one-hot groups (contract.checked_table)."""

    def network_inputs(self, model_input: Any) -> tuple[Any, list[str] | None]:
        import torch

        values, flags = checked_table(model_input, self.contract["columns"], self.contract,
                                      self.limits)
        return torch.from_numpy(values), flags

    @classmethod
    def refuses(cls, datamodule: Any) -> str | None:
        inputs, _ = datamodule.raw_split("train")
        if not isinstance(inputs, pd.DataFrame):
            return f"takes a table of named columns; this data gives {type(inputs).__name__}"
        return None

    @staticmethod
    def input_contract(datamodule: Any) -> dict[str, Any]:
        inputs, _ = datamodule.raw_split("train")
        return table_contract(inputs, list(inputs.columns))

    @staticmethod
    def input_schema(datamodule: Any) -> Schema:
        # Names only (any type, optional): MLflow's schema check would otherwise refuse or
        # convert values before the model's own checks could name the problem.
        inputs, _ = datamodule.raw_split("train")
        return Schema([ColSpec(AnyType(), n, required=False) for n in inputs.columns])

    @staticmethod
    def example(datamodule: Any) -> pd.DataFrame:
        inputs, _ = datamodule.raw_split("test")
        return inputs.head(3)


class Image(Kind, kind="image"):
    """One image or a batch (N, H, W) / (N, H*W) of pixels 0-255 of any integer or float
    type, the shape the train split's images have."""

    def network_inputs(self, model_input: Any) -> tuple[Any, None]:
        import torch

        images = checked_images(model_input, self.limits, tuple(self.contract["shape"]))
        return torch.from_numpy(images).unsqueeze(1), None

    @classmethod
    def refuses(cls, datamodule: Any) -> str | None:
        images, _ = datamodule.raw_split("train")
        if not isinstance(images, np.ndarray) or images.ndim != 3:
            return "takes images (N, height, width); this data gives other inputs"
        return None

    @staticmethod
    def input_contract(datamodule: Any) -> dict[str, Any]:
        images, _ = datamodule.raw_split("train")
        return {"shape": list(images.shape[1:])}


class Text(Kind, kind="text"):
    """One string, a list of strings, or a table with the data's text column (or a single
    column of any name)."""

    def network_inputs(self, model_input: Any) -> tuple[list[str], None]:
        return checked_texts(model_input, self.limits, self.contract["column"]), None

    @classmethod
    def refuses(cls, datamodule: Any) -> str | None:
        texts, _ = datamodule.raw_split("train")
        if not isinstance(texts, pd.DataFrame) or len(texts.columns) != 1:
            return "takes one column of texts; this data gives other inputs"
        return None

    @staticmethod
    def input_contract(datamodule: Any) -> dict[str, Any]:
        texts, _ = datamodule.raw_split("train")
        return {"column": str(texts.columns[0])}
