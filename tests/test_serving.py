"""`mlflow models serve` answers raw inputs for every registered model, and a malformed
payload gets a 4xx with a message, never a 500."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import free_port
from services import payloads, post_json, served_model


@pytest.mark.slow
@pytest.mark.parametrize(("task", "name"), [("market_regressor", "market-regressor"),
                                            ("mnist_cnn", "mnist-cnn"),
                                            ("sentiment_lstm", "sentiment-lstm")])
def test_served_model_answers_raw_inputs_and_refuses_malformed_ones(
    task: str, name: str, train, data_dir: Path, tracking
) -> None:
    assert train(f"experiment={task}", "debug=fast").returncode == 0
    with served_model(f"models:/{name}@challenger", tracking, free_port()) as url:
        good, bad = payloads(task, data_dir)
        status, body = post_json(url, good)
        assert status == 200, body
        assert len(body["predictions"]) >= 1
        for payload in bad:
            status, body = post_json(url, payload)
            assert 400 <= status < 500, (status, body)
            assert body.get("message"), body
