"""The serving contract as requests: each task's JSON bodies for `POST /invocations`, the
status the model must answer and a fragment of its message. Shared by the in-process tests
(MLflow's own request handling, no HTTP) and the tests against `mlflow models serve`; the
README's contract table lists the same cases."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

CONTINENTS = [f"continent_{c}" for c in ("Africa", "Americas", "Asia", "Europe", "Oceania")]
NAMES = {"market_regressor": "market-regressor", "mnist_cnn": "mnist-cnn",
         "sentiment_lstm": "sentiment-lstm"}


@dataclass(frozen=True)
class Case:
    label: str
    body: object      # JSON-able request body
    status: int
    fragment: str     # in the message of a refusal ("" for a 200)


def _split(frame: pd.DataFrame) -> dict:
    return {"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}


def market_cases(data_dir: Path) -> list[Case]:
    rows = pd.read_csv(data_dir / "market" / "test.csv").head(2)
    one = rows.head(1).drop(columns=["log_gdp"])
    record = json.loads(one.to_json(orient="records"))[0]

    def edited(**values) -> dict:
        return {"dataframe_records": [{**record, **values}]}

    return [
        Case("2 rows (dataframe_split, extra columns ignored)", _split(rows), 200, ""),
        Case("1 row (dataframe_records)", {"dataframe_records": [record]}, 200, ""),
        Case("column fertility missing", _split(rows.drop(columns=["fertility"])), 400,
             "missing column(s) 'fertility'"),
        Case("fertility null", edited(fertility=None), 400,
             "column 'fertility' row 0: missing value"),
        Case("year \"x\"", edited(year="x"), 400, "column 'year' row 0: 'x' is not a number"),
        Case("year 2010.5", edited(year=2010.5), 400, "2010.5 is not a whole number"),
        Case("log_population 1e6", edited(log_population=1e6), 400,
             "column 'log_population' row 0: 1e+06 is outside the plausible range"),
        Case("life_expectancy -500", edited(life_expectancy=-500), 400,
             "column 'life_expectancy' row 0: -500 is outside the plausible range"),
        Case("two continents set to 1", edited(**{**{c: 0 for c in CONTINENTS},
                                                  "continent_Africa": 1, "continent_Asia": 1}),
             400, "row 0: 2 of continent_Africa, continent_Americas, continent_Asia, "
             "continent_Europe, continent_Oceania set to 1; exactly one must be (one-hot)"),
        Case("continent_Asia 7", edited(continent_Asia=7), 400,
             "column 'continent_Asia' row 0: 7; one-hot columns hold 0 or 1"),
        Case("1001 rows", {"dataframe_records": [record] * 1001}, 400,
             "1001 rows in one request; the limit is 1000"),
    ]


def mnist_cases(data_dir: Path) -> list[Case]:
    images = np.load(data_dir / "digits" / "test.npz")["images"][:3]
    return [
        Case("one 28x28 image, integers 0-255", {"inputs": images[0].tolist()}, 200, ""),
        Case("3 images (3, 28, 28)", {"inputs": images.tolist()}, 200, ""),
        Case("3 flat images (3, 784), floats 0-255",
             {"inputs": images.reshape(3, -1).astype(float).tolist()}, 200, ""),
        Case("shape (2, 27, 28)", {"inputs": np.zeros((2, 27, 28), int).tolist()}, 400,
             "got shape (2, 27, 28)"),
        Case("a pixel 300", {"inputs": np.full((28, 28), 300).tolist()}, 400,
             "pixels must be 0-255"),
        Case("[null]", {"inputs": [None]}, 400, "pixels must be numbers 0-255"),
        Case("a string", {"inputs": "seven"}, 400, "pixels must be numbers 0-255"),
        Case("1001 images", {"inputs": np.zeros((1001, 784), int).tolist()}, 400,
             "1001 images in one request; the limit is 1000"),
    ]


def sentiment_cases(data_dir: Path) -> list[Case]:
    return [
        Case("a list of strings", {"inputs": ["a wonderful film", "dull and lifeless"]}, 200,
             ""),
        Case("one string", {"inputs": "a moving, beautifully acted film"}, 200, ""),
        Case("a one-column table", {"dataframe_split": {"columns": ["review"],
                                                        "data": [["a wonderful film"]]}},
             200, ""),
        Case("[null]", {"inputs": [None]}, 400, "text 0: expected a string, got null"),
        Case("[42]", {"inputs": [42]}, 400, "text 0: expected a string, got int"),
        Case("[\"ok\", \"\"]", {"inputs": ["ok", ""]}, 400, "text 1: empty string"),
        Case("two columns, none named text",
             {"dataframe_split": {"columns": ["a", "b"], "data": [["x", "y"]]}}, 400,
             "expected a 'text' column or a single column"),
        Case("a 6000-character text", {"inputs": ["great " * 1000]}, 400,
             "text 0: 6000 characters; the limit is 5000"),
        Case("1001 texts", {"inputs": ["fine"] * 1001}, 400,
             "1001 texts in one request; the limit is 1000"),
    ]


CASES = {"market_regressor": market_cases, "mnist_cnn": mnist_cases,
         "sentiment_lstm": sentiment_cases}
