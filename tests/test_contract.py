"""The input contract, in-process: each request of contract_cases.py parsed by MLflow's own
scoring-server code (as `mlflow models serve` parses it, with the signature each task logs),
then checked by the contract the model runs. No network, no trained network: the checks come
before the network. (test_models_as_code.py sends the market requests through a registered
version; test_serving.py sends all of them over HTTP.)"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from contract_cases import CASES
from mlflow.pyfunc.scoring_server import infer_and_parse_data

from modelyard.config import compose
from modelyard.registry.contract import (
    InputError,
    Limits,
    checked_images,
    checked_table,
    checked_texts,
    table_contract,
)
from modelyard.registry.kinds import Table
from modelyard.training import build

from conftest import working_directory


@pytest.fixture(scope="module")
def market(project: Path) -> SimpleNamespace:
    """The market data's contract and the input schema its versions log."""
    with working_directory(project):
        datamodule = build.datamodule(compose("train", ["experiment=market_regressor"]))
    datamodule.setup()
    names = list(datamodule.features)
    return SimpleNamespace(names=names, schema=Table.signature(datamodule).inputs,
                           contract=Table.input_contract(datamodule))


def check(task: str, body: dict, market: SimpleNamespace | None, limits: Limits):
    if task == "market_regressor":
        frame = infer_and_parse_data(body, market.schema)
        return checked_table(frame, market.names, market.contract, limits)[0]
    parsed = infer_and_parse_data(body, None)  # images and texts: no input schema
    return (checked_images if task == "mnist_cnn" else checked_texts)(parsed, limits)


@pytest.mark.parametrize("task", sorted(CASES))
def test_each_request_is_scored_or_refused_with_its_message(task: str, data_dir: Path,
                                                            market: SimpleNamespace) -> None:
    for case in CASES[task](data_dir):
        if case.status == 200:
            assert len(check(task, case.body, market, Limits())) >= 1, case.label
            continue
        with pytest.raises(InputError) as refused:
            check(task, case.body, market, Limits())
        assert case.fragment in refused.value.message, (case.label, refused.value.message)
        assert refused.value.get_http_status_code() == 400


def test_the_scoring_server_cannot_prefix_the_payload_to_the_message() -> None:
    error = InputError("text 0: empty string")
    error.message = f"Failed to predict data '{'x' * 10_000}'. \nError: {error.message}"
    assert error.message == "text 0: empty string"
    assert "stack_trace" not in error.serialize_as_json()


def test_images_one_or_many_any_numeric_type_scaled_from_0_255() -> None:
    image = np.arange(784, dtype=np.int64).reshape(28, 28) % 256
    for given in (image.astype(np.uint8), image.astype(np.float32), image.tolist()):
        assert checked_images(given, Limits()).shape == (1, 28, 28)
    batch = checked_images(np.stack([image, image]).reshape(2, 784), Limits())
    assert batch.shape == (2, 28, 28) and batch.dtype == np.float32
    assert batch.max() == pytest.approx(1.0) and batch.min() == 0.0
    with pytest.raises(InputError, match="pixels must be numbers 0-255, got true/false"):
        checked_images(image > 3, Limits())
    with pytest.raises(InputError, match="unequal"):
        checked_images([[1, 2], [3]], Limits())


def test_texts_from_a_string_a_list_a_series_or_a_table() -> None:
    assert checked_texts("great", Limits()) == ["great"]
    assert checked_texts(pd.Series(["a", "b"]), Limits()) == ["a", "b"]
    assert checked_texts(pd.DataFrame({"text": ["a"], "id": [1]}), Limits()) == ["a"]
    with pytest.raises(InputError, match="text 1: expected a string, got null"):
        checked_texts(pd.DataFrame({"text": ["a", np.nan]}), Limits())
    with pytest.raises(InputError, match="limit is 2"):
        checked_texts(["a", "b", "c"], Limits(max_rows=2))


def test_table_contract_from_the_train_split_and_flag_mode() -> None:
    train = pd.DataFrame({"year": [1960, 2000], "gdp": [1.5, 3.5], "c_a": [1, 0],
                          "c_b": [0, 1], "flag_x": [0, 1]})
    contract = table_contract(train, list(train.columns))
    assert contract["integer"] == ["year", "c_a", "c_b", "flag_x"]
    assert contract["one_hot"] == [["c_a", "c_b"]]  # flag_x is a lone 0/1 column
    assert contract["ranges"]["gdp"] == [1.5, 3.5]

    rows = pd.DataFrame({"year": [1990, 2050], "gdp": [2.0, 3.6], "c_a": [1, 0],
                         "c_b": [0, 1], "flag_x": [0, 0]})
    names = list(rows.columns)
    with pytest.raises(InputError, match="column 'year' row 1: 2050 is outside"):
        checked_table(rows, names, contract, Limits())
    # 3.6 is within 10% of gdp's span past its maximum; 2050 is flagged, not refused
    values, flags = checked_table(rows, names, contract, Limits(out_of_range="flag"))
    assert values.shape == (2, 5) and flags == ["", "year"]
    assert checked_table({"year": 1990, "gdp": 2, "c_a": 0, "c_b": 1, "flag_x": 1}, names,
                         contract, Limits())[1] is None  # one row as a dict of scalars
    with pytest.raises(InputError, match="expected a table"):
        checked_table([1, 2], names, contract, Limits())
    with pytest.raises(Exception, match="out_of_range must be"):
        Limits.from_config({"out_of_range": "ignore"})
