"""Tasks are discovered from conf/experiment/, and a declaration that could not be registered,
served or promoted is refused in one line before anything trains (the CLI's override check
runs `tasks.check`); a version's gate comes from its recorded policy."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from omegaconf import OmegaConf

from modelyard import tasks
from modelyard.config import check_overrides
from modelyard.errors import ConfigError
from modelyard.registry.kinds import kind_named, outputs
from modelyard.registry.policy import bound, resolved

from conftest import ROOT, working_directory


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """A project of conf/ alone, whose market task's declaration a test edits."""
    shutil.copytree(ROOT / "conf", tmp_path / "conf")
    return tmp_path


def declare(project: Path, **registry: object) -> None:
    path = project / "conf" / "experiment" / "market_regressor.yaml"
    experiment = yaml.safe_load(path.read_text())
    experiment["registry"].update(registry)
    path.write_text("# @package _global_\n" + yaml.safe_dump(experiment))


@pytest.mark.parametrize(("registry", "refusal"), [
    ({"model": ""}, "registry.model is empty"),
    ({"serving": {"kind": "audio"}}, "unknown serving kind 'audio'"),
    ({"policy": {"metric": "accuracy"}}, "registry.policy.metric 'accuracy' is not one"),
    ({"policy": {"metric": "mean_squared_error", "baseline": "nbsvm"}},
     "registry.policy.baseline 'nbsvm' is not one of the task's baselines (least_squares"),
    ({"policy": {"metric": "max_error", "baseline": "least_squares"}},
     "baselines record no max_error"),
    ({"policy": {"metric": "r2_score", "greater_is_better": False}}, "contradicts r2_score"),
    ({"policy": {"metric": "mean_squared_error", "flor": 1.0}}, "has no key(s) flor"),
])
def test_an_incomplete_declaration_is_refused_before_training(project: Path, registry: dict,
                                                               refusal: str) -> None:
    declare(project, **registry)
    with working_directory(project), pytest.raises(ConfigError) as refused:
        check_overrides("train", ["experiment=market_regressor"])
    assert refusal in str(refused.value), refused.value
    assert "\n" not in str(refused.value)


def test_a_new_experiment_file_is_a_task(project: Path) -> None:
    shutil.copy(project / "conf/experiment/market_regressor.yaml",
                project / "conf/experiment/my_gdp.yaml")
    with working_directory(project):
        assert "my_gdp" in tasks.names()
        assert tasks.registered_models()["my_gdp"] == "market-regressor"


def test_own_data_gets_its_own_study_and_the_task_s_data_keeps_the_space_s_name() -> None:
    space = "market_regressor_optuna"
    shipped = check_overrides("train", ["experiment=market_regressor"])
    assert tasks.study_name(space, shipped) == space
    batched = check_overrides("train", ["experiment=market_regressor", "data.batch_size=32"])
    assert tasks.study_name(space, batched) == space  # batching does not make other data
    mine = check_overrides("train", ["experiment=market_regressor", "data.path=/my/countries",
                                     "data.features=[fertility]"])
    fewer = check_overrides("train", ["experiment=market_regressor", "data.path=/my/countries",
                                      "data.features=[fertility,year]"])
    assert tasks.study_name(space, mine).startswith(f"{space}@countries-")
    assert len({tasks.study_name(space, c) for c in (shipped, mine, fewer)}) == 3


def test_the_gate_s_bound_is_the_stricter_of_the_floor_and_the_baseline_s_margin() -> None:
    baselines = {"least_squares": {"test_mse": 0.5}, "tfidf_lr": {"test_acc": 0.8}}
    trail = resolved({"metric": "mean_squared_error", "baseline": "least_squares",
                      "baseline_margin": -0.01, "floor": 1.0}, ["least_squares"])
    assert trail["greater_is_better"] is False
    assert bound(trail, baselines) == pytest.approx(0.505)  # within 1% of least squares
    assert bound({**trail, "floor": 0.4}, baselines) == 0.4  # the floor is stricter
    beat = resolved({"metric": "accuracy_score", "baseline": "tfidf_lr",
                     "baseline_margin": 0.05, "floor": 0.75}, ["tfidf_lr"])
    assert bound(beat, baselines) == pytest.approx(0.84)  # 5% above the baseline
    assert bound(resolved({"metric": "accuracy_score"}, []), baselines) is None
    with pytest.raises(ConfigError, match="records no test_acc of baseline 'nbsvm'"):
        bound({**beat, "baseline": "nbsvm"}, baselines)


def test_a_new_kind_of_input_is_one_class_declared_in_the_model_s_module(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_audio_model.py").write_text(
        "from modelyard.registry.kinds import Kind\n\n\n"
        "class Waveform(Kind, kind='waveform'):\n    '''Waveforms.'''\n\n\n"
        "class Net:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = OmegaConf.create({"registry": {"serving": {"kind": "waveform"}},
                            "model": {"_target_": "my_audio_model.Net"}})
    assert tasks.kind_name(cfg) == "waveform"  # found by importing the model's module
    assert kind_named("waveform").__doc__ == "Waveforms."
    cfg.registry.serving.kind = "video"
    with pytest.raises(ConfigError, match="serving kind 'video': one of image, table, text"):
        tasks.kind_name(cfg)


def test_served_outputs_are_named_after_the_data_s_target_and_classes() -> None:
    values = outputs(np.array([1.5, 2.5]), "log_gdp", None)
    assert list(values.columns) == ["log_gdp"]
    binary = outputs(np.array([0.2, 0.9]), "label", ["negative", "positive"])
    assert list(binary.columns) == ["label", "probability_positive"]
    assert list(binary.label) == ["negative", "positive"]
    digits = outputs(np.eye(3)[[2, 0]], "digit", [0, 1, 2])
    assert list(digits.columns) == ["digit", "p0", "p1", "p2"] and list(digits.digit) == [2, 0]
    named = outputs(np.eye(3)[[1]], "cultivar", ["class_0", "class_1", "class_2"])
    assert list(named.columns) == ["cultivar", "p_class_0", "p_class_1", "p_class_2"]
    assert named.cultivar[0] == "class_1"
