"""The input contract of a served model, checked by the model's own code (it ships with every
version): which shapes, types and values each task takes, one item or many, and the one-line
message for anything else, which `mlflow models serve` answers with HTTP 400.

MLflow's own schema enforcement would refuse some valid inputs (uint8 images, a single image,
a plain list of strings) and let wrong ones through (a `null` review becomes the word "None"),
so the signatures leave the decisions to these checks (registry/serving.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

REFUSE, FLAG = "refuse", "flag"
OUT_OF_RANGE_COLUMN = "out_of_range"  # flag mode: the columns outside their range, per row


class InputError(MlflowException):
    """Bad input: HTTP 400 with this message and nothing else. MLflow's scoring server
    prefixes the message of any MlflowException raised in `predict` with the whole parsed
    input ("Failed to predict data '…'"), which echoed megabytes back to the client; this
    exception's message is set once and keeps its value."""

    def __init__(self, message: str) -> None:
        super().__init__(message, error_code=INVALID_PARAMETER_VALUE)

    @property
    def message(self) -> str:
        return self._message

    @message.setter
    def message(self, value: str) -> None:
        if not hasattr(self, "_message"):
            self._message = value


@dataclass(frozen=True)
class Limits:
    """conf/registry `serving:` as logged in the version's model config (MLflow lets a
    server change it: MLFLOW_PYFUNC_INFERENCE_CONFIG='{"out_of_range": "flag"}')."""

    max_rows: int = 1000
    max_text_chars: int = 5000
    out_of_range: str = REFUSE
    range_margin: float = 0.1

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Limits:
        limits = cls(**{k: config[k] for k in cls.__dataclass_fields__ if k in config})
        if limits.out_of_range not in (REFUSE, FLAG):
            raise MlflowException(f"out_of_range must be {REFUSE!r} or {FLAG!r}, got "
                                  f"{limits.out_of_range!r}")
        return limits


def check_count(count: int, limits: Limits, what: str) -> None:
    if count == 0:
        raise InputError(f"no {what} to score")
    if count > limits.max_rows:
        raise InputError(f"{count} {what} in one request; the limit is {limits.max_rows} "
                         f"(serving.max_rows): send them in batches")


# --- tables: the named columns of the train split ---------------------------------------


def table_contract(train: pd.DataFrame, names: list[str]) -> dict[str, Any]:
    """What the train split says a plausible row is: each column's min and max, the columns
    that only hold integers, and groups of 0/1 columns with exactly one 1 per row (one-hot,
    named `<prefix>_<value>`)."""
    frame = train[names].astype(float)
    integer = [n for n in names if (frame[n] % 1 == 0).all()]
    binary = [n for n in integer if frame[n].isin([0, 1]).all() and "_" in n]
    groups: dict[str, list[str]] = {}
    for name in binary:
        groups.setdefault(name.rsplit("_", 1)[0], []).append(name)
    one_hot = [g for g in groups.values() if len(g) > 1 and (frame[g].sum(axis=1) == 1).all()]
    return {
        "columns": list(names),
        "ranges": {n: [float(frame[n].min()), float(frame[n].max())] for n in names},
        "integer": integer,
        "one_hot": one_hot,
    }


def as_table(model_input: Any) -> pd.DataFrame:
    if isinstance(model_input, pd.DataFrame):
        return model_input
    if isinstance(model_input, dict):  # one row of scalars, or columns of lists
        scalar = all(np.ndim(v) == 0 for v in model_input.values())
        return pd.DataFrame([model_input] if scalar else model_input)
    if isinstance(model_input, list) and all(isinstance(r, dict) for r in model_input):
        return pd.DataFrame(model_input)
    raise InputError(f"expected a table of named columns, got {type(model_input).__name__}")


def _numbers(column: pd.Series, name: str) -> np.ndarray:
    """A column as float64; the first value that is not a finite number is refused."""
    if pd.api.types.is_bool_dtype(column):
        raise InputError(f"column {name!r}: true/false is not a number")
    numeric = pd.to_numeric(column, errors="coerce")
    if pd.api.types.is_numeric_dtype(column) or not (numeric.isna() & column.notna()).any():
        values = numeric.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        row = int(np.flatnonzero(numeric.isna() & column.notna())[0])
        raise InputError(f"column {name!r} row {row}: {str(column.iloc[row])[:40]!r} is not "
                         "a number")
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        what = "missing value (null/NaN)" if np.isnan(values[row]) else "infinite value"
        raise InputError(f"column {name!r} row {row}: {what}")
    return values


def checked_table(model_input: Any, names: list[str], contract: dict[str, Any],
                  limits: Limits) -> tuple[np.ndarray, list[str] | None]:
    """(rows x `names` as float32, per-row out-of-range column names in flag mode, else None).
    Extra columns are ignored."""
    frame = as_table(model_input)
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(map(repr, missing))}; the model takes "
                         f"{', '.join(names)}")
    check_count(len(frame), limits, "rows")
    columns = {n: _numbers(frame[n], n) for n in names}
    for name in contract.get("integer", []):
        fraction = columns[name] % 1 != 0
        if fraction.any():
            row = int(np.flatnonzero(fraction)[0])
            raise InputError(f"column {name!r} row {row}: {columns[name][row]:g} is not a "
                             "whole number")
    one_hot = [n for group in contract.get("one_hot", []) for n in group]
    for group in contract.get("one_hot", []):
        block = np.stack([columns[n] for n in group], axis=1)
        off = ~np.isin(block, (0, 1))
        if off.any():
            row, col = map(int, np.argwhere(off)[0])
            raise InputError(f"column {group[col]!r} row {row}: {block[row, col]:g}; one-hot "
                             "columns hold 0 or 1")
        ones = block.sum(axis=1)
        if (ones != 1).any():
            row = int(np.flatnonzero(ones != 1)[0])
            raise InputError(f"row {row}: {int(ones[row])} of {', '.join(group)} set to 1; "
                             "exactly one must be (one-hot)")
    flags: list[list[str]] = [[] for _ in range(len(frame))]
    for name, (low, high) in contract.get("ranges", {}).items():
        if name in one_hot or name not in columns:
            continue
        margin = limits.range_margin * (high - low)
        outside = (columns[name] < low - margin) | (columns[name] > high + margin)
        if not outside.any():
            continue
        if limits.out_of_range == REFUSE:
            row = int(np.flatnonzero(outside)[0])
            raise InputError(
                f"column {name!r} row {row}: {columns[name][row]:g} is outside the plausible "
                f"range {low - margin:.4g} to {high + margin:.4g} (the train split's "
                f"{low:.4g} to {high:.4g} widened by {limits.range_margin:.0%} of its span; "
                "serving.out_of_range=flag scores it and flags it instead)")
        for row in np.flatnonzero(outside):
            flags[row].append(name)
    values = np.stack([columns[n] for n in names], axis=1).astype(np.float32)
    return values, ([",".join(f) for f in flags] if limits.out_of_range == FLAG else None)


# --- images: the train split's shape (28x28 digits), pixels 0-255 ------------------------


def checked_images(model_input: Any, limits: Limits,
                   shape: tuple[int, int] = (28, 28)) -> np.ndarray:
    """One image (H, W) or a batch (N, H, W) or (N, H*W) of numbers 0-255 (any integer or
    float type) -> float32 (N, H, W) scaled to 0-1."""
    height, width = shape
    forms = (f"one image ({height}, {width}) or a batch (N, {height}, {width}) or "
             f"(N, {height * width})")
    try:
        images = np.asarray(model_input)
    except ValueError:  # ragged nested lists
        raise InputError(f"images of unequal sizes; expected {forms}") from None
    if images.dtype == bool or not (np.issubdtype(images.dtype, np.integer)
                                    or np.issubdtype(images.dtype, np.floating)):
        found = {"b": "true/false", "U": "text", "S": "bytes"}.get(
            images.dtype.kind, "nulls or mixed values")
        raise InputError(f"pixels must be numbers 0-255, got {found}")
    if images.shape == (height, width):
        images = images[None]
    elif images.ndim == 2 and images.shape[1] == height * width:
        images = images.reshape(-1, height, width)
    if images.ndim != 3 or images.shape[1:] != (height, width):
        raise InputError(f"expected {forms}, got shape {images.shape}")
    check_count(len(images), limits, "images")
    images = images.astype(np.float32)
    if not np.isfinite(images).all():
        raise InputError("pixels must be finite numbers 0-255, got NaN or infinity")
    if images.min() < 0 or images.max() > 255:
        raise InputError(f"pixels must be 0-255 (uint8 scale), got {images.min():g} to "
                         f"{images.max():g}")
    return images / 255.0


# --- texts: one string or many -------------------------------------------------------------


def checked_texts(model_input: Any, limits: Limits, column: str = "text") -> list[str]:
    """One string, a list/array/Series of strings, or a table with a `text` column (or a
    single column) -> the strings. Null, non-string, blank and overlong items are refused."""
    if isinstance(model_input, pd.DataFrame):
        if column in model_input.columns:
            items = model_input[column].tolist()
        elif len(model_input.columns) == 1:
            items = model_input.iloc[:, 0].tolist()
        else:
            raise InputError(f"expected a {column!r} column or a single column, got "
                             f"{', '.join(map(str, model_input.columns))}")
    elif isinstance(model_input, str):
        items = [model_input]
    elif isinstance(model_input, np.ndarray) and model_input.ndim == 0:
        items = [model_input.item()]
    elif isinstance(model_input, list | tuple | np.ndarray | pd.Series):
        items = list(model_input)
    else:
        raise InputError(f"expected a string or a list of strings, got "
                         f"{type(model_input).__name__}")
    check_count(len(items), limits, "texts")
    for index, item in enumerate(items):
        if not isinstance(item, str):
            what = "null" if item is None or item is pd.NA or (
                isinstance(item, float) and np.isnan(item)) else type(item).__name__
            raise InputError(f"text {index}: expected a string, got {what}")
        if not item.strip():
            raise InputError(f"text {index}: empty string")
        if len(item) > limits.max_text_chars:
            raise InputError(f"text {index}: {len(item)} characters; the limit is "
                             f"{limits.max_text_chars} (serving.max_text_chars)")
    return items
