"""Every experiment composes with every trainer; GPU configs are validated without a GPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from modelyard import tasks
from modelyard.config import check_overrides
from modelyard.errors import ConfigError

from conftest import ROOT

CONF_DIR = ROOT / "conf"
EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
TRAINERS = sorted(p.stem for p in (CONF_DIR / "trainer").glob("*.yaml"))


SHIPPED = ["market_regressor", "mnist_cnn", "sentiment_lstm"]


def test_the_shipped_tasks_are_discovered_and_each_declares_all_it_needs() -> None:
    assert set(SHIPPED) <= set(tasks.names()) == set(EXPERIMENTS)
    for task in tasks.names():
        tasks.check(check_overrides("train", [f"experiment={task}"]))  # raises if incomplete
    registered = tasks.registered_models()
    assert {task: registered[task] for task in SHIPPED} == {
        "market_regressor": "market-regressor", "mnist_cnn": "mnist-cnn",
        "sentiment_lstm": "sentiment-lstm"}


@pytest.mark.parametrize("trainer", TRAINERS)
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_with_every_trainer(experiment: str, trainer: str) -> None:
    cfg = check_overrides("train", [f"experiment={experiment}", f"trainer={trainer}"])
    assert cfg.task == experiment
    assert cfg.logger.experiment_name == experiment
    assert cfg.model._target_.startswith("modelyard.models.")
    assert cfg.data._target_.startswith("modelyard.data.")
    assert cfg.callbacks.model_checkpoint.monitor == cfg.monitor.metric


@pytest.mark.parametrize(
    ("trainer", "env", "expected"),
    [
        ("gpu", {}, {"accelerator": "gpu", "devices": 1, "precision": "bf16-mixed"}),
        ("ddp", {}, {"accelerator": "gpu", "devices": -1, "precision": "bf16-mixed"}),
        ("multinode", {"SLURM_NNODES": "4", "SLURM_NTASKS_PER_NODE": "8"},
         {"accelerator": "gpu", "num_nodes": 4, "devices": 8}),
        ("multinode", {"WORLD_SIZE": "16", "LOCAL_WORLD_SIZE": "8", "SLURM_NNODES": "9"},
         {"num_nodes": 2, "devices": 8}),  # torchrun's view wins inside an allocation
        ("ddp_cpu", {}, {"accelerator": "cpu", "devices": 2}),
    ],
)
def test_distributed_and_gpu_trainers_are_valid_lightning_trainers(
    trainer: str, env: dict[str, str], expected: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No GPU here: compose, then build the same Trainer on the CPU to prove Lightning takes
    every key, the strategy object and the precision plugin."""
    from hydra.utils import instantiate
    from lightning.pytorch import Trainer
    from lightning.pytorch.strategies import DDPStrategy

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    cfg = check_overrides("train", ["experiment=mnist_cnn", f"trainer={trainer}",
                                    "paths.output_dir=/tmp/unused"])
    resolved = OmegaConf.to_container(cfg.trainer, resolve=True)
    assert expected.items() <= resolved.items()
    if trainer != "gpu":
        backend = "gloo" if trainer == "ddp_cpu" else "nccl"
        assert resolved["strategy"]["process_group_backend"] == backend
    on_cpu = instantiate(cfg.trainer, accelerator="cpu", devices=1, num_nodes=1, logger=False,
                         enable_progress_bar=False)
    assert isinstance(on_cpu, Trainer)
    assert isinstance(on_cpu.strategy, DDPStrategy) == (trainer != "gpu")
    if "precision" in resolved:
        assert on_cpu.precision == resolved["precision"]


def test_slurm_launcher_composes_with_the_multinode_trainer() -> None:
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", ["experiment=mnist_cnn", "trainer=multinode",
                                "hydra/launcher=slurm"], return_hydra_config=True)
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=False)
    assert launcher["_target_"].endswith("submitit_launcher.SlurmLauncher")
    assert cfg.hydra.launcher.gpus_per_node == cfg.hydra.launcher.tasks_per_node
    assert cfg.hydra.launcher.signal_delay_s > 0  # time to checkpoint before the limit


def test_debug_fast_limits_every_loop() -> None:
    cfg = check_overrides("train", ["experiment=sentiment_lstm", "debug=fast"])
    assert cfg.trainer.max_epochs == 1
    assert cfg.trainer.limit_train_batches and cfg.trainer.limit_test_batches


def test_logger_none_disables_tracking_and_the_lr_monitor() -> None:
    cfg = check_overrides("train", ["experiment=mnist_cnn", "logger=none"])
    assert cfg.logger is None
    assert cfg.callbacks.lr_monitor is None


@pytest.mark.parametrize(
    ("override", "fragments"),
    [
        ("experiment=nope", ["nope"]),
        ("model.lrr=0.1", ["lrr"]),
        # model and data keys are typed by their schemas (modelyard.schema): OmegaConf's words
        ("model.lr=abc", ["model.lr", "Float"]),
        ("trainer.max_epochs=2.5", ["whole number"]),
        ("model.bidirectional=3", ["model.bidirectional expects a bool"]),
        ("model.pooling=avg", ["model.pooling", "max_mean", "'avg'"]),
        ("model.embed_dropout=1.0", ["model.embed_dropout must be in [0, 1)"]),
        ("data.ngram_order=-1", ["data.ngram_order must be >= 0"]),
        ("data.ngram_min_freq=0", ["data.ngram_min_freq must be positive"]),
    ],
)
def test_bad_overrides_are_rejected_in_one_line(override: str, fragments: list[str]) -> None:
    overrides = ["experiment=sentiment_lstm", override]
    if override.startswith("experiment="):
        overrides = [override]
    with pytest.raises(ConfigError) as caught:
        check_overrides("train", overrides)
    for fragment in fragments:
        assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_float_where_a_float_was_is_fine() -> None:
    cfg = check_overrides("train", ["experiment=mnist_cnn", "model.lr=1", "seed=7"])
    assert cfg.model.lr == 1 and cfg.seed == 7


def test_a_callback_is_switched_off_with_null_but_a_number_stays_a_number() -> None:
    cfg = check_overrides("train", ["experiment=mnist_cnn", "callbacks.early_stopping=null"])
    assert cfg.callbacks.early_stopping is None and cfg.callbacks.model_checkpoint
    with pytest.raises(ConfigError, match="expects a number"):
        check_overrides("train", ["experiment=mnist_cnn", "trainer.max_epochs=[1]"])


def test_params_yaml_equals_the_hydra_defaults_dvc_yaml_overrides() -> None:
    """`dvc repro` and a plain `modelyard train experiment=<task>` train the same model: every
    knob a shipped task's params.yaml entry passes holds the value Hydra composes by default
    (`data.path` the same directory)."""
    entries = yaml.safe_load((ROOT / "params.yaml").read_text())["tasks"]
    assert set(SHIPPED) <= set(entries)  # the pipeline trains every shipped task

    def leaves(mapping: dict, prefix: str = "") -> list[tuple[str, object]]:
        return [pair for key, value in mapping.items() for pair in (
            leaves(value, f"{prefix}{key}.") if isinstance(value, dict)
            else [(f"{prefix}{key}", value)])]

    for task, entry in entries.items():
        if "experiment" in entry:  # a user's own data through a task: its own values
            continue
        cfg = check_overrides("train", [f"experiment={task}"])
        for key, value in leaves(entry):
            default = OmegaConf.select(cfg, key)
            if key == "data.path":
                assert (ROOT / value).resolve() == Path(default).resolve(), task
            else:
                assert default == value, f"{task}: {key}"


SPACES = sorted(p.stem for p in (CONF_DIR / "hparams_search").glob("*.yaml"))


@pytest.mark.parametrize("space", SPACES)
def test_every_value_a_search_space_can_propose_is_a_valid_override(space: str) -> None:
    """A space's keys exist and its bounds and choices pass the schemas, so no sweep stops at
    a trial the config refuses (one composition per corner: all lows, all highs, and the
    n-th choice of every categorical)."""
    experiment = next(e for e in EXPERIMENTS if space.startswith(e))
    base = [f"experiment={experiment}", f"hparams_search={space}"]
    cfg = check_overrides("sweep", base)
    specs = cfg.search.space
    for key in specs:
        assert OmegaConf.select(cfg, key) is not None, f"{space}: {key} is not a config key"

    def value(spec, corner: int) -> object:
        if spec.type == "categorical":
            return spec.choices[corner % len(spec.choices)]
        return spec.low if corner % 2 == 0 else spec.high

    corners = max([2, *(len(s.choices) for s in specs.values() if s.type == "categorical")])
    for corner in range(corners):
        check_overrides("sweep", [*base, *(f"{key}={str(value(spec, corner)).lower()}"
                                           for key, spec in specs.items())])
