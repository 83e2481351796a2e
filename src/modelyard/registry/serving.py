"""MLflow pyfunc models that take raw inputs: a table of country indicators, 28x28 images,
plain strings.

Every version is logged as code (MLflow's models-from-code: registry/model_code.py makes a
`RawInputModel`), with the project's source, the weights as a state dict and the preprocessing
as JSON (registry/packaging.py); loading one runs that source and unpickles nothing. The
task's adapter below turns raw inputs into tensors and the network's scores into a table,
after the input contract (registry/contract.py) has checked them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel
from mlflow.types import ColSpec, Schema
from mlflow.types.schema import AnyType

from modelyard.quiet import without_forced_notice
from modelyard.registry.contract import (
    OUT_OF_RANGE_COLUMN,
    Limits,
    checked_images,
    checked_table,
    checked_texts,
    table_contract,
)

# MLflow checks a PythonModel's predict for type hints when the class is made, and says to
# add some: there are none on purpose, since hints would have MLflow convert inputs before the
# input contract (registry/contract.py) sees them
with without_forced_notice("Add type hints to the `predict` method"):
    class RawInputModel(PythonModel):
        """The pyfunc of every version: rebuilds the network from its files (checked against the
        weights hash in the model config) and hands inputs to the task's adapter."""

        def load_context(self, context: Any) -> None:
            from modelyard.registry.packaging import TamperedModel, read_contract, read_model

            config = context.model_config
            adapter = ADAPTERS.get(config.get("adapter"))
            if adapter is None:
                raise MlflowException(f"unknown adapter {config.get('adapter')!r}: one of "
                                      f"{sorted(ADAPTERS)}")
            try:
                model = read_model(config["model_class"], context.artifacts,
                                   config["weights_sha256"])
            except TamperedModel as err:
                raise MlflowException(str(err)) from None
            self.adapter = adapter(model, Limits.from_config(config),
                                   read_contract(context.artifacts))

        def predict(self, context, model_input, params=None) -> pd.DataFrame:
            return self.adapter.predict(model_input)


class Adapter:
    """Raw inputs of one task -> the network -> a table; also how the task is described to
    MLflow (signature, example) and scored by the promotion gate. `limits` and `contract`:
    the input contract (registry/contract.py) from the model config and preprocessing JSON."""

    def __init__(self, model: Any, limits: Limits | None = None,
                 contract: dict[str, Any] | None = None) -> None:
        self.model = model
        self.limits = limits or Limits()
        self.contract = contract or {}

    def run(self, inputs: Any) -> torch.Tensor:
        with torch.inference_mode():
            return self.model.scores(self.model(inputs))

    @staticmethod
    def input_contract(datamodule: Any) -> dict[str, Any]:
        """What the train split says about plausible inputs (stored in preprocessing.json)."""
        return {}


class MarketScorer(Adapter):
    """A table of the named indicator columns (extra columns ignored) -> predicted log GDP
    per row; values are checked against the train split (contract.checked_table)."""

    def predict(self, model_input: Any) -> pd.DataFrame:
        names = list(self.model.hparams.feature_names)
        values, flags = checked_table(model_input, names, self.contract, self.limits)
        frame = pd.DataFrame({"log_gdp": self.run(torch.from_numpy(values)).numpy()})
        if flags is not None:
            frame[OUT_OF_RANGE_COLUMN] = flags
        return frame

    @staticmethod
    def input_contract(datamodule: Any) -> dict[str, Any]:
        return table_contract(datamodule.frames["train"], list(datamodule.features))

    @staticmethod
    def describe(model: Any, datamodule: Any) -> tuple[ModelSignature, pd.DataFrame]:
        # Names only (any type, optional): MLflow's schema check would otherwise refuse or
        # convert values before the model's own checks could name the problem.
        names = list(model.hparams.feature_names)
        signature = ModelSignature(
            inputs=Schema([ColSpec(AnyType(), n, required=False) for n in names]),
            outputs=Schema([ColSpec("double", "log_gdp")]),
        )
        return signature, datamodule.frames["test"][names].head(3)

    model_type = "regressor"

    @staticmethod
    def test_set(datamodule: Any) -> tuple[pd.DataFrame, np.ndarray]:
        frame = datamodule.frames["test"]
        return frame[datamodule.features], frame[datamodule.target].to_numpy()

    @staticmethod
    def prediction(output: pd.DataFrame) -> np.ndarray:
        return output["log_gdp"].to_numpy()


class DigitClassifier(Adapter):
    """One 28x28 image or a batch (N, 28, 28) / (N, 784), pixels 0-255 of any integer or float
    type -> digit and its 10 probabilities."""

    def predict(self, model_input: Any) -> pd.DataFrame:
        images = checked_images(model_input, self.limits)
        probabilities = self.run(torch.from_numpy(images).unsqueeze(1)).numpy()
        frame = pd.DataFrame(probabilities, columns=[f"p{d}" for d in range(10)])
        frame.insert(0, "digit", probabilities.argmax(axis=1))
        return frame

    @staticmethod
    def describe(model: Any, datamodule: Any) -> tuple[ModelSignature, np.ndarray]:
        # No input schema: MLflow's tensor check refuses uint8 and a single image.
        columns = [ColSpec("long", "digit")] + [ColSpec("double", f"p{d}") for d in range(10)]
        images = DigitClassifier.test_set(datamodule)[0][:2].astype(np.uint8)
        return ModelSignature(inputs=None, outputs=Schema(columns)), images

    model_type = "classifier"

    @staticmethod
    def test_set(datamodule: Any) -> tuple[np.ndarray, np.ndarray]:
        # pixels 0-255 as float64: what versions logged before the input contract also take
        # (their signature refuses uint8), so a gate can score an older champion
        images, labels = datamodule.datasets["test"].tensors  # 0-1 floats, from uint8 / 255
        return (images[:, 0] * 255.0).round().numpy().astype(np.float64), labels.numpy()

    @staticmethod
    def prediction(output: pd.DataFrame) -> np.ndarray:
        return output["digit"].to_numpy()


class SentimentClassifier(Adapter):
    """One string, a list of strings or a one-column table (`text`) -> positive/negative and
    P(positive)."""

    def predict(self, model_input: Any) -> pd.DataFrame:
        texts = checked_texts(model_input, self.limits)
        probability = self.run(texts).numpy()
        return pd.DataFrame({
            "label": np.where(probability >= 0.5, "positive", "negative"),
            "probability_positive": probability,
        })

    @staticmethod
    def describe(model: Any, datamodule: Any) -> tuple[ModelSignature, pd.DataFrame]:
        # No input schema: MLflow's string column turns a null into the word "None" and a
        # plain list of strings into an empty table.
        signature = ModelSignature(
            inputs=None,
            outputs=Schema([ColSpec("string", "label"), ColSpec("double", "probability_positive")]),
        )
        texts, _ = datamodule.texts_and_labels("test")
        return signature, pd.DataFrame({"text": texts[:2]})

    model_type = "classifier"

    @staticmethod
    def test_set(datamodule: Any) -> tuple[pd.DataFrame, np.ndarray]:
        texts, labels = datamodule.texts_and_labels("test")
        return pd.DataFrame({"text": texts}), np.asarray(labels)

    @staticmethod
    def prediction(output: pd.DataFrame) -> np.ndarray:
        return (output["label"] == "positive").to_numpy().astype(int)


ADAPTERS = {a.__name__: a for a in (MarketScorer, DigitClassifier, SentimentClassifier)}


def read_inputs(path: str) -> Any:
    """A file as the raw input a served model takes: a CSV table, an image or .npy array of
    28x28 digits, or a text file with one review per line."""
    from pathlib import Path

    from modelyard.errors import DataError

    file = Path(path)
    if not file.is_file():
        raise DataError(f"{file}: no such file")
    suffix = file.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pd.read_csv(file)
            if frame.empty:
                raise DataError(f"{file}: no rows to score (a header line, then one row each)")
            return frame
        if suffix == ".npy":
            return np.load(file, allow_pickle=False)
        if suffix in (".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".gif"):
            from PIL import Image

            with Image.open(file) as image:
                return np.asarray(image.convert("L"))
        if suffix == ".txt":
            lines = [line.strip() for line in file.read_text().splitlines() if line.strip()]
            if not lines:  # else an empty float column, which MLflow refuses as "<U0"
                raise DataError(f"{file}: no reviews (expected one review per line)")
            return pd.DataFrame({"text": lines})
    except (OSError, ValueError) as err:
        raise DataError(f"{file}: unreadable ({err})") from None
    raise DataError(f"{file}: expected .csv, .npy, an image or .txt")


def explain(error: Exception) -> str:
    """A scoring error on one line. MLflow's schema check quotes the whole input before its
    reason (a missing column, a wrong type), so a cut-short message lost the reason: keep the
    reason, which MLflow raised first."""
    from modelyard.errors import one_line

    text = str(error)
    reason = error.__context__
    if text.startswith("Failed to enforce schema") and reason is not None:
        text = f"input does not match the model's signature: {reason}"
    return one_line(text, 500)
