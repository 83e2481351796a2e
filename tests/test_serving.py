"""`mlflow models serve` answers raw inputs for every registered model, and a malformed
payload gets a 4xx with a message, never a 500."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import BIN, free_port


def post(url: str, payload: object) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def payloads(task: str, data_dir: Path) -> tuple[object, list[object]]:
    """A good request and malformed ones: wrong shape, wrong column, empty strings, NaN."""
    if task == "mnist_cnn":
        images = np.load(data_dir / "digits" / "test.npz")["images"][:2]
        return {"inputs": images.tolist()}, [
            {"inputs": np.zeros((2, 27, 28)).tolist()},
            {"inputs": [[[float("nan")] * 28] * 28]},
        ]
    if task == "sentiment_lstm":
        return {"dataframe_split": {"columns": ["text"], "data": [["a wonderful film"]]}}, [
            {"dataframe_split": {"columns": ["text"], "data": [[""]]}},
            {"dataframe_split": {"columns": ["review"], "data": [["wrong column"]]}},
        ]
    rows = pd.read_csv(data_dir / "market" / "test.csv").head(2).drop(columns=["country",
                                                                              "continent"])
    good = {"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}
    return good, [
        {"dataframe_split": json.loads(rows.drop(columns=["fertility"]).to_json(
            orient="split", index=False))},
        {"dataframe_records": [{**rows.iloc[0].to_dict(), "fertility": None}]},
    ]


@pytest.mark.slow
@pytest.mark.parametrize(("task", "name"), [("market_regressor", "market-regressor"),
                                            ("mnist_cnn", "mnist-cnn"),
                                            ("sentiment_lstm", "sentiment-lstm")])
def test_served_model_answers_raw_inputs_and_refuses_malformed_ones(
    task: str, name: str, train, data_dir: Path, tracking
) -> None:
    assert train(f"experiment={task}", "debug=fast").returncode == 0
    port = free_port()
    env = {**os.environ, **tracking, "PATH": f"{BIN}:{os.environ['PATH']}"}
    server = subprocess.Popen(
        [str(BIN / "mlflow"), "models", "serve", "-m", f"models:/{name}@challenger",
         "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2):
                    break
            except OSError:
                assert server.poll() is None, server.stderr.read()[-3000:]
                time.sleep(0.5)
        good, bad = payloads(task, data_dir)
        status, body = post(f"http://127.0.0.1:{port}/invocations", good)
        assert status == 200, body
        assert len(body["predictions"]) >= 1
        for payload in bad:
            status, body = post(f"http://127.0.0.1:{port}/invocations", payload)
            assert 400 <= status < 500, (status, body)
            assert body.get("message"), body
    finally:
        server.terminate()
        server.wait(timeout=30)
