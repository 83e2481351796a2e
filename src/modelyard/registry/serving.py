"""The MLflow pyfunc model every version is: it takes raw inputs (a table, images, plain
strings) and answers with a table named after the data's own target and classes.

Every version is logged as code (MLflow's models-from-code: registry/model_code.py makes a
`RawInputModel`), with the project's source, the weights as a state dict, the preprocessing as
JSON (registry/packaging.py) and the version's record (registry/record.py); loading one runs
that source and unpickles nothing. The record's serving kind (registry/kinds.py) turns raw
inputs into tensors and the network's scores into the table, after the input contract
(registry/contract.py) has checked them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PythonModel

from modelyard.quiet import without_forced_notice
from modelyard.registry.contract import Limits

# MLflow checks a PythonModel's predict for type hints when the class is made, and says to
# add some: there are none on purpose, since hints would have MLflow convert inputs before the
# input contract (registry/contract.py) sees them
with without_forced_notice("Add type hints to the `predict` method"):
    class RawInputModel(PythonModel):
        """The pyfunc of every version: rebuilds the network from its files (checked against the
        weights hash in the model config) and hands inputs to the record's serving kind."""

        def load_context(self, context: Any) -> None:
            from modelyard.errors import ModelyardError
            from modelyard.registry import record as records
            from modelyard.registry.kinds import Kind
            from modelyard.registry.packaging import TamperedModel, read_contract, read_model

            config = context.model_config
            try:  # the network first: its module may declare the version's serving kind
                model = read_model(config["model_class"], context.artifacts,
                                   config["weights_sha256"])
                self.record = records.read(context.artifacts)
            except (TamperedModel, ModelyardError) as err:
                raise MlflowException(str(err)) from None
            kind = Kind.known.get(self.record.get("kind"))
            if kind is None:
                raise MlflowException(f"unknown serving kind {self.record.get('kind')!r}: one "
                                      f"of {', '.join(sorted(Kind.known))}")
            self.kind = kind(model, self.record, Limits.from_config(config),
                             read_contract(context.artifacts))

        def predict(self, context, model_input, params=None) -> pd.DataFrame:
            return self.kind.predict(model_input)


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
