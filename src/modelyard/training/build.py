"""Config -> objects: the instantiation the train and evaluate entry points share."""

from __future__ import annotations

import lightning as L
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger
from lightning.pytorch.loggers.logger import DummyLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig

from modelyard.data.base import SplitDataModule
from modelyard.errors import StoreError, one_line
from modelyard.tracking.store import init_lock, without_credentials


def datamodule(cfg: DictConfig) -> SplitDataModule:
    """The task's DataModule with every split read and checked against its manifest."""
    module = instantiate(cfg.data, _convert_="all")
    module.setup()
    return module


def model(cfg: DictConfig, fitted: dict) -> L.LightningModule:
    """The task's model, given what it needs from the train split; a config its class does
    not take (a key it has no argument for) is one line, not Hydra's trace."""
    from modelyard.errors import ConfigError

    try:
        build = instantiate(cfg.model, _convert_="all")
        return build(**fitted)
    except (InstantiationException, TypeError) as err:
        raise ConfigError(f"model {cfg.model._target_}: {one_line(err.__cause__ or err)}"
                          ) from None


def logger(cfg: DictConfig, run_id: str | None = None, job: str = "") -> Logger | None:
    """The configured logger; `run_id` continues an existing MLflow run (resume). A run
    without a configured `logger.run_name` is named after its task, what the job changed and
    a short id (`job`, e.g. "evaluate", says what kind of run it is).

    Ranks other than 0 get an inert logger: they never write, and not even opening the store
    keeps two processes from initialising a fresh database at once (torchrun starts all).
    """
    if not cfg.get("logger"):
        return None
    if rank_zero_only.rank != 0:
        return DummyLogger()
    from modelyard.tracking.naming import name_for

    name = cfg.logger.get("run_name") or name_for(cfg, job)
    try:
        with init_lock(cfg.logger.tracking_uri):  # the logger opens the store at once
            return instantiate(cfg.logger, run_name=name,
                               **({"run_id": run_id} if run_id else {}))
    except InstantiationException as err:
        cause = err.__cause__ or err
        uri = without_credentials(cfg.logger.tracking_uri)
        raise StoreError(f"cannot open MLflow tracking store {uri}: {one_line(cause)}") from None


def baseline_metrics(cfg: DictConfig, datamodule: SplitDataModule) -> dict[str, float]:
    """Each named baseline in `cfg.baseline` fitted on the train split and scored on the test
    split, its metrics keyed `baseline_<name>_<metric>` (beside the model's `<metric>`)."""
    return {f"baseline_{name}_{metric}": value
            for name, spec in (cfg.get("baseline") or {}).items() if spec is not None
            for metric, value in instantiate(spec)(datamodule).items()}


def callbacks(cfg: DictConfig) -> list[L.Callback]:
    return [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]


def trainer(
    cfg: DictConfig, logger: Logger | None, callbacks: list[L.Callback]
) -> L.Trainer:
    # objects go to the partial, not through Hydra, which would try to read them as config
    return instantiate(cfg.trainer, _partial_=True)(logger=logger or False, callbacks=callbacks)
