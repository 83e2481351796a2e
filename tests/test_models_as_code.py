"""A registered version is the project's code, a state dict and JSON (MLflow's models-from-code):
it loads without unpickling anything, predicts as the trained network does, and refuses
weights that are not the ones registered. In-process: train(cfg) and register() into a SQLite
store of the module's own."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from contract_cases import market_cases

from modelyard.config import compose
from modelyard.errors import ModelyardError
from modelyard.registry.register import register
from modelyard.registry.versions import load_checked
from modelyard.training.export import weights_sha256
from modelyard.training.train import train

from conftest import restored_mlflow_uris, train_overrides, working_directory


@dataclass
class Registered:
    version: object
    network: torch.nn.Module
    model_dir: Path  # the logged model in the store's artifact root
    rows: pd.DataFrame
    tracking_uri: str
    retrain: tuple  # what register() takes: the job's config, model file, datamodule


@pytest.fixture(scope="module")
def registered(project: Path, empty_store: Path,
               tmp_path_factory: pytest.TempPathFactory) -> Registered:
    root = tmp_path_factory.mktemp("store")
    shutil.copy(empty_store, root / "mlflow.db")
    output_dir = tmp_path_factory.mktemp("market") / "job"
    uri = f"sqlite:///{root}/mlflow.db"
    with restored_mlflow_uris(), working_directory(project):
        cfg = compose("train", train_overrides("market_regressor", output_dir, tracking_uri=uri))
        result = train(cfg)
        version = register(cfg, result.model_file, result.datamodule, result.run_id)
        [model_dir] = {p.parent for p in (root / "mlartifacts").rglob("MLmodel")}
        rows = pd.read_csv(project / "data" / "market" / "test.csv").head(5)
        yield Registered(version, result.model.eval(), model_dir, rows, uri,
                         (cfg, result.model_file, result.datamodule))


def test_a_version_is_code_a_state_dict_and_json_and_predicts_as_trained(
        registered: Registered) -> None:
    flavor = yaml.safe_load((registered.model_dir / "MLmodel").read_text())["flavors"]
    pyfunc = flavor["python_function"]
    assert Path(pyfunc["model_code_path"]).name == "model_code.py"
    assert "python_model" not in pyfunc  # no cloudpickled object
    assert not [p for p in registered.model_dir.rglob("*") if p.suffix in (".pkl", ".pickle")]
    assert (registered.model_dir / "code" / "modelyard" / "registry" / "serving.py").is_file()
    files = registered.model_dir / "artifacts"
    assert sorted(p.name for p in files.iterdir()) == [
        "hyperparameters.json", "preprocessing.json", "task.json", "weights.pt"]
    state = torch.load(files / "weights.pt", weights_only=True)
    assert weights_sha256(state) == registered.version.tags["weights_sha256"]
    # a public-release pin: PyPI serves no "+cpu" build
    requirements = (registered.model_dir / "requirements.txt").read_text().split()
    assert f"torch=={torch.__version__.split('+')[0]}" in requirements
    assert not [r for r in requirements if "+" in r]

    served = load_checked(registered.version).predict(registered.rows)
    features = registered.network.hparams.feature_names
    with torch.inference_mode():  # the network's own answer, named after the data's target
        raw = registered.network.scores(registered.network(
            torch.tensor(registered.rows[features].to_numpy(np.float32)))).numpy()
    pd.testing.assert_frame_equal(served, pd.DataFrame({"log_gdp": raw}), check_dtype=False)


class RunsCode:
    """A pickle that runs a command when it is unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_weights_other_than_the_registered_ones_are_refused_in_one_line(
        registered: Registered, tmp_path: Path) -> None:
    weights = registered.model_dir / "artifacts" / "weights.pt"
    mlmodel = registered.model_dir / "MLmodel"
    original, original_mlmodel = weights.read_bytes(), mlmodel.read_text()
    state = torch.load(weights, weights_only=True)
    tampered = {k: v + 0.5 if v.is_floating_point() else v for k, v in state.items()}
    marker = tmp_path / "unpickled"
    try:
        torch.save(tampered, weights)  # the weights alone replaced
        with pytest.raises(Exception, match="refusing to load a tampered model") as caught:
            load_checked(registered.version)
        assert "\n" not in str(caught.value)

        torch.save({"weights": RunsCode(marker)}, weights)  # a pickle with a payload
        with pytest.raises(Exception, match="not a plain state dict"):
            load_checked(registered.version)
        assert not marker.exists()

        # weights and the model's own record of their hash replaced together: the registry's
        # weights_sha256 tag still says which weights were registered
        torch.save(tampered, weights)
        config = yaml.safe_load(original_mlmodel)
        config["flavors"]["python_function"]["config"]["weights_sha256"] = \
            weights_sha256(tampered)
        mlmodel.write_text(yaml.safe_dump(config))
        with pytest.raises(ModelyardError, match="weights_sha256 tag; refusing a tampered"):
            load_checked(registered.version)
    finally:
        weights.write_bytes(original)
        mlmodel.write_text(original_mlmodel)
    load_checked(registered.version)  # restored: loads again


class Pickled(mlflow.pyfunc.PythonModel):
    """How a model was logged before models-from-code: a cloudpickled Python object."""

    def predict(self, context, model_input):
        return model_input


def test_a_version_logged_as_a_pickle_is_refused_and_its_weights_register_again_as_code(
        registered: Registered, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store from before models were logged as code: its pickled version is refused in one
    line, and registering the same weights again makes a new version instead of returning it."""
    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")  # as the CLI sets it
    name, (cfg, model_file, datamodule) = "older-regressor", registered.retrain
    with restored_mlflow_uris(), working_directory(cfg.paths.root_dir):
        mlflow.set_tracking_uri(registered.tracking_uri)
        client = mlflow.MlflowClient(registered.tracking_uri)
        with mlflow.start_run():
            logged = mlflow.pyfunc.log_model(name="old", python_model=Pickled(),
                                             pip_requirements=["mlflow"])
        old = mlflow.register_model(logged.model_uri, name, tags={
            "weights_sha256": registered.version.tags["weights_sha256"]})
        with pytest.raises(ModelyardError) as caught:
            load_checked(client.get_model_version(name, old.version))
        message = str(caught.value)
        assert "\n" not in message and "pickled Python object" in message
        assert "take its aliases off it" in message

        cfg = cfg.copy()
        cfg.registry.name = name
        again = register(cfg, model_file, datamodule)
        assert again.version != old.version
        load_checked(again).predict(registered.rows)


def test_the_version_answers_the_market_contract_through_mlflow_s_request_handling(
        registered: Registered, data_dir: Path) -> None:
    """MLflow's own request code (`mlflow models serve` minus HTTP) with the logged signature:
    nothing is refused or converted before the model's checks, which answer 400 alone."""
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc.scoring_server import invocations

    model = load_checked(registered.version)
    for case in market_cases(data_dir):
        try:
            answer = invocations(json.dumps(case.body), "application/json", model,
                                 model.metadata.get_input_schema())
            status, message = answer.status, ""
        except MlflowException as err:
            status, message = err.get_http_status_code(), json.loads(err.serialize_as_json())
        assert status == case.status, (case.label, message)
        if status != 200:
            assert case.fragment in message["message"] and "stack_trace" not in message


def test_flag_mode_scores_out_of_range_rows_and_names_their_columns(
        registered: Registered) -> None:
    import mlflow

    rows = registered.rows.assign(life_expectancy=[70.0, -500.0, 70.0, 70.0, 70.0])
    uri = f"models:/{registered.version.name}/{registered.version.version}"
    flagged = mlflow.pyfunc.load_model(uri, model_config={"out_of_range": "flag"}).predict(rows)
    assert flagged["out_of_range"].tolist() == ["", "life_expectancy", "", "", ""]
    assert np.isfinite(flagged["log_gdp"]).all()


def test_predict_names_the_versions_when_the_model_has_no_champion(
        registered: Registered, data_dir: Path, capsys: pytest.CaptureFixture,
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fluent_mlflow: None) -> None:
    from modelyard.cli import main
    from modelyard.tracking.store import HTTP_CLIENT_ENV

    # what `main` sets for its process, put back afterwards
    for key, value in {**HTTP_CLIENT_ENV, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}.items():
        monkeypatch.setenv(key, os.environ.get(key, value))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registered.tracking_uri)
    csv = data_dir / "market" / "test.csv"
    with pytest.raises(SystemExit) as ended:
        main(["predict", "market-regressor", str(csv)])
    assert ended.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "modelyard: error: market-regressor has no version with the alias 'champion'; aliases: "
        "challenger (v1); versions: 1; choose with --alias <alias> or --version <n>")

    pd.read_csv(csv).drop(columns=["fertility"]).to_csv(tmp_path / "rows.csv", index=False)
    with pytest.raises(SystemExit):
        main(["predict", "market-regressor", str(tmp_path / "rows.csv"), "--version", "1"])
    assert "missing column(s) 'fertility'" in capsys.readouterr().err

    main(["predict", "market-regressor", str(csv), "--alias", "challenger"])
    assert capsys.readouterr().out.splitlines()[0] == "log_gdp"

    with pytest.raises(SystemExit) as ended:
        main(["predict", "--help"])
    assert ended.value.code == 0 and "--version" in capsys.readouterr().out
