"""The served models keep their input contract over real HTTP (`mlflow models serve`), and a
stranger can run them: a fresh virtual environment with only the version's own
requirements.txt (no modelyard) loads all three champions and predicts as this one does.

One store for the module: the three tasks trained at debug size in-process, registered and
promoted by the real gate (its floors relaxed for debug-size models)."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from contract_cases import CASES, NAMES

from conftest import free_port, restored_mlflow_uris, train_overrides, working_directory
from services import post_json, served_model

pytestmark = pytest.mark.slow

# debug-sized models: no floor, no baseline to beat (a first version is then promoted)
LOOSE = ["registry.policy.floor=null", "registry.policy.baseline=null"]


@dataclass
class Registry:
    uri: str
    root: Path


@pytest.fixture(scope="module")
def registry(project: Path, empty_store: Path,
             tmp_path_factory: pytest.TempPathFactory) -> Registry:
    from modelyard.config import compose
    from modelyard.registry.promotion import promote
    from modelyard.registry.register import register
    from modelyard.training.train import train

    from conftest import cached_client

    root = tmp_path_factory.mktemp("served-store")
    shutil.copy(empty_store, root / "mlflow.db")
    uri = f"sqlite:///{root}/mlflow.db"
    with restored_mlflow_uris(), working_directory(project):
        for task in NAMES:
            output_dir = tmp_path_factory.mktemp(task) / "job"
            cfg = compose("train", train_overrides(task, output_dir, tracking_uri=uri))
            result = train(cfg)
            register(cfg, result.model_file, result.datamodule, result.run_id)
        for name in NAMES.values():  # after the registrations: a gate sets MLflow's experiment
            decision = promote(cached_client(uri), name, LOOSE)
            assert decision.promoted, decision.reason
    return Registry(uri, root)


@pytest.mark.parametrize("task", sorted(NAMES))
def test_served_model_keeps_its_input_contract_over_http(task: str, registry: Registry,
                                                         data_dir: Path) -> None:
    port = free_port()
    env = {"MLFLOW_TRACKING_URI": registry.uri}
    with served_model(f"models:/{NAMES[task]}@champion", env, port) as url:
        for case in CASES[task](data_dir):
            status, body = post_json(url, case.body)
            assert status == case.status, (case.label, status, body)
            if status == 200:
                assert len(body["predictions"]) >= 1, case.label
                continue
            message = body.get("message", "")
            assert case.fragment in message, (case.label, message)
            # the message alone: no stack trace, no echo of the request
            assert set(body) <= {"error_code", "message", "sqlstate", "error_class"}, body
            assert "\n" not in message and len(message) < 400, (case.label, message)
        # MLflow's server answers a request without Content-Type with 500 before the model
        # runs; the README says so. This notices when MLflow starts answering it properly.
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("POST", "/invocations", body=b'{"inputs": []}',
                           headers={"Content-Length": "14"})
        assert connection.getresponse().status == 500


# Runs in the fresh venv: the downloaded versions, mlflow.pyfunc.load_model, raw inputs.
STRANGER = r"""
import importlib.util, json, sys
import numpy as np, pandas as pd, mlflow
assert importlib.util.find_spec("modelyard") is None, "modelyard is installed"
models, data = sys.argv[1], json.loads(sys.argv[2])
out = {}
for name, inputs in data.items():
    model = mlflow.pyfunc.load_model(f"{models}/{name}")
    if name == "mnist-cnn":  # one uint8 image, no batch axis
        inputs = np.asarray(inputs, dtype=np.uint8)
    elif name == "market-regressor":
        inputs = pd.DataFrame(inputs)
    out[name] = model.predict(inputs).to_dict(orient="list")
print(json.dumps(out))
"""


def test_a_fresh_venv_without_modelyard_runs_the_three_champions(
        registry: Registry, data_dir: Path, tmp_path: Path, fluent_mlflow: None) -> None:
    import mlflow

    mlflow.set_tracking_uri(registry.uri)
    mlflow.set_registry_uri(registry.uri)
    client = mlflow.MlflowClient(registry.uri)
    models = tmp_path / "models"
    requirements = set()
    for name in NAMES.values():
        version = client.get_model_version_by_alias(name, "champion")
        path = mlflow.artifacts.download_artifacts(
            f"models:/{name}/{version.version}", dst_path=str(models / name))
        requirements.add((Path(path) / "requirements.txt").read_text())
    [text] = requirements  # one environment serves all three
    assert not [line for line in text.split() if "+" in line], text  # PyPI has no local builds
    assert "torch==2.13.0" in text.split()  # pinned: never an unpinned (CUDA) torch

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    installed = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "-r",
         str(models / "mnist-cnn" / "requirements.txt")],
        capture_output=True, text=True, timeout=900)
    assert installed.returncode == 0, installed.stderr[-3000:]

    images = np.load(data_dir / "digits" / "test.npz")["images"]
    rows = pd.read_csv(data_dir / "market" / "test.csv").head(3)
    inputs = {"mnist-cnn": images[0].tolist(),
              "sentiment-lstm": ["a moving, beautifully acted film", "dull and lifeless"],
              "market-regressor": rows.to_dict(orient="list")}
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    ran = subprocess.run([str(venv / "bin" / "python"), "-c", STRANGER, str(models),
                          json.dumps(inputs)], capture_output=True, text=True, cwd=tmp_path,
                         env={**env, "MLFLOW_DISABLE_TELEMETRY": "true"}, timeout=300)
    assert ran.returncode == 0, ran.stderr[-3000:]
    theirs = json.loads(ran.stdout.strip().splitlines()[-1])

    # the same versions in this environment, with modelyard installed, answer the same
    for name, raw in (("mnist-cnn", images[0]), ("sentiment-lstm", inputs["sentiment-lstm"]),
                      ("market-regressor", rows)):
        mine = mlflow.pyfunc.load_model(str(models / name)).predict(raw)
        assert list(theirs[name]) == list(mine.columns)
        for column in mine.columns:
            if mine[column].dtype.kind == "f":
                np.testing.assert_allclose(theirs[name][column], mine[column], rtol=1e-5)
            else:
                assert theirs[name][column] == mine[column].tolist(), (name, column)
