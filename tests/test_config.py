"""Every experiment composes with every trainer; GPU configs are validated without a GPU."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from modelyard.config import CONF_DIR, check_overrides
from modelyard.errors import ConfigError

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
TRAINERS = sorted(p.stem for p in (CONF_DIR / "trainer").glob("*.yaml"))


def test_three_experiments_exist() -> None:
    assert EXPERIMENTS == ["market_regressor", "mnist_cnn", "sentiment_lstm"]


@pytest.mark.parametrize("trainer", TRAINERS)
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_with_every_trainer(experiment: str, trainer: str) -> None:
    cfg = check_overrides("train", [f"experiment={experiment}", f"trainer={trainer}"])
    assert cfg.task == experiment
    assert cfg.logger.experiment_name == experiment
    assert cfg.model._target_.startswith("modelyard.models.")
    assert cfg.data._target_.startswith("modelyard.data.")
    assert cfg.callbacks.model_checkpoint.monitor == cfg.monitor.metric


def test_gpu_trainer_asks_for_one_gpu_with_bf16() -> None:
    cfg = check_overrides("train", ["experiment=mnist_cnn", "trainer=gpu"])
    trainer = OmegaConf.to_container(cfg.trainer)
    assert trainer["accelerator"] == "gpu"
    assert trainer["devices"] == 1
    assert trainer["precision"] == "bf16-mixed"
    # Lightning accepts these arguments: the Trainer signature has each key.
    import inspect

    from lightning.pytorch import Trainer

    accepted = set(inspect.signature(Trainer.__init__).parameters)
    assert set(trainer) - {"_target_"} <= accepted


def test_debug_fast_limits_every_loop() -> None:
    cfg = check_overrides("train", ["experiment=sentiment_lstm", "debug=fast"])
    assert cfg.trainer.max_epochs == 1
    assert cfg.trainer.limit_train_batches and cfg.trainer.limit_test_batches


def test_logger_none_disables_tracking_and_the_lr_monitor() -> None:
    cfg = check_overrides("train", ["experiment=mnist_cnn", "logger=none"])
    assert cfg.logger is None
    assert cfg.callbacks.lr_monitor is None


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("experiment=nope", "nope"),
        ("model.lrr=0.1", "lrr"),
        ("model.lr=abc", "model.lr expects a number"),
        ("trainer.max_epochs=2.5", "whole number"),
        ("model.bidirectional=3", "model.bidirectional expects a bool"),
    ],
)
def test_bad_overrides_are_rejected_in_one_line(override: str, fragment: str) -> None:
    overrides = ["experiment=sentiment_lstm", override]
    if override.startswith("experiment="):
        overrides = [override]
    with pytest.raises(ConfigError) as caught:
        check_overrides("train", overrides)
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_float_where_a_float_was_is_fine() -> None:
    cfg = check_overrides("train", ["experiment=mnist_cnn", "model.lr=1", "seed=7"])
    assert cfg.model.lr == 1 and cfg.seed == 7
