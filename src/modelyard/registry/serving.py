"""MLflow pyfunc models that take raw inputs: a table of country indicators, 28x28 images,
plain strings.

Every version is logged as code (MLflow's models-from-code: registry/model_code.py makes a
`RawInputModel`), with the project's source, the weights as a state dict and the preprocessing
as JSON (registry/packaging.py); loading one runs that source and unpickles nothing. The
task's adapter below turns raw inputs into tensors and the network's scores into a table.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature, infer_signature
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel
from mlflow.types import ColSpec, Schema, TensorSpec


def bad_input(message: str) -> MlflowException:
    """An error the scoring server answers with HTTP 400 and this message."""
    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


class RawInputModel(PythonModel):
    """The pyfunc of every version: rebuilds the network from its files (checked against the
    weights hash in the model config) and hands inputs to the task's adapter."""

    def load_context(self, context: Any) -> None:
        from modelyard.registry.packaging import TamperedModel, read_model

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
        self.adapter = adapter(model)

    def predict(self, context, model_input, params=None) -> pd.DataFrame:
        return self.adapter.predict(model_input)


class Adapter:
    """Raw inputs of one task -> the network -> a table; also how the task is described to
    MLflow (signature, example) and scored by the promotion gate."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def run(self, inputs: Any) -> torch.Tensor:
        with torch.inference_mode():
            return self.model.scores(self.model(inputs))


class MarketScorer(Adapter):
    """DataFrame of named indicator columns -> predicted log GDP per row."""

    def predict(self, model_input: Any) -> pd.DataFrame:
        names = list(self.model.hparams.feature_names)
        frame = pd.DataFrame(model_input)
        missing = [n for n in names if n not in frame.columns]
        if missing:
            raise bad_input(f"missing column(s) {missing}; expected {names}")
        if frame.empty:
            raise bad_input("no rows to score")
        try:
            values = frame[names].to_numpy(dtype=np.float32)
        except (TypeError, ValueError) as err:
            raise bad_input(f"non-numeric indicator value: {err}") from None
        if not np.isfinite(values).all():
            raise bad_input("NaN or infinite indicator value")
        return pd.DataFrame({"log_gdp": self.run(torch.from_numpy(values)).numpy()})

    @staticmethod
    def describe(model: Any, datamodule: Any) -> tuple[ModelSignature, pd.DataFrame]:
        # Column types as in the data files (a year is an integer), so rows read from the
        # same kind of CSV pass MLflow's schema check.
        example = datamodule.frames["test"][list(model.hparams.feature_names)].head(3)
        return infer_signature(example, pd.DataFrame({"log_gdp": [0.0]})), example

    model_type = "regressor"

    @staticmethod
    def test_set(datamodule: Any) -> tuple[pd.DataFrame, np.ndarray]:
        frame = datamodule.frames["test"]
        return frame[datamodule.features], frame[datamodule.target].to_numpy()

    @staticmethod
    def prediction(output: pd.DataFrame) -> np.ndarray:
        return output["log_gdp"].to_numpy()


class DigitClassifier(Adapter):
    """(N, 28, 28) images, uint8 0-255 or float 0-1 -> digit and its 10 probabilities."""

    def predict(self, model_input: Any) -> pd.DataFrame:
        images = np.asarray(model_input, dtype=np.float64)
        if images.ndim == 2 and images.shape == (28, 28):
            images = images[None]
        if images.ndim != 3 or images.shape[1:] != (28, 28) or len(images) == 0:
            raise bad_input(f"expected images of shape (N, 28, 28), got {images.shape}")
        if not np.isfinite(images).all() or images.min() < 0 or images.max() > 255:
            raise bad_input("pixels must be finite, 0-255 (uint8) or 0-1 (float)")
        if images.max() > 1.0:  # uint8 scale
            images = images / 255.0
        probabilities = self.run(torch.from_numpy(images).float().unsqueeze(1)).numpy()
        frame = pd.DataFrame(probabilities, columns=[f"p{d}" for d in range(10)])
        frame.insert(0, "digit", probabilities.argmax(axis=1))
        return frame

    @staticmethod
    def describe(model: Any, datamodule: Any) -> tuple[ModelSignature, np.ndarray]:
        columns = [ColSpec("long", "digit")] + [ColSpec("double", f"p{d}") for d in range(10)]
        signature = ModelSignature(
            inputs=Schema([TensorSpec(np.dtype(np.float64), (-1, 28, 28))]),
            outputs=Schema(columns),
        )
        images = datamodule.datasets["test"].tensors[0][:2, 0].numpy() * 255.0
        return signature, images.round().astype(np.float64)

    model_type = "classifier"

    @staticmethod
    def test_set(datamodule: Any) -> tuple[np.ndarray, np.ndarray]:
        images, labels = datamodule.datasets["test"].tensors
        return images[:, 0].numpy().astype(np.float64), labels.numpy()

    @staticmethod
    def prediction(output: pd.DataFrame) -> np.ndarray:
        return output["digit"].to_numpy()


class SentimentClassifier(Adapter):
    """Plain strings (a `text` column or a list) -> positive/negative and P(positive)."""

    def predict(self, model_input: Any) -> pd.DataFrame:
        if isinstance(model_input, pd.DataFrame):
            if "text" not in model_input.columns:
                raise bad_input(f"expected a 'text' column, got {list(model_input.columns)}")
            texts = model_input["text"].tolist()
        else:
            texts = list(model_input)
        if not texts or any(not isinstance(t, str) or not t.strip() for t in texts):
            raise bad_input("expected a non-empty list of non-empty strings")
        probability = self.run(texts).numpy()
        return pd.DataFrame({
            "label": np.where(probability >= 0.5, "positive", "negative"),
            "probability_positive": probability,
        })

    @staticmethod
    def describe(model: Any, datamodule: Any) -> tuple[ModelSignature, pd.DataFrame]:
        signature = ModelSignature(
            inputs=Schema([ColSpec("string", "text")]),
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
            return np.load(file).astype(np.float64)
        if suffix in (".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".gif"):
            from PIL import Image

            with Image.open(file) as image:
                return np.asarray(image.convert("L"), dtype=np.float64)[None]
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
