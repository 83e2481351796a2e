"""Config -> objects: the instantiation the train and evaluate entry points share."""

from __future__ import annotations

import lightning as L
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from lightning.pytorch.loggers import MLFlowLogger
from omegaconf import DictConfig

from modelyard import tracking
from modelyard.data.base import SplitDataModule
from modelyard.errors import ModelyardError


def datamodule(cfg: DictConfig) -> SplitDataModule:
    """The task's DataModule with every split read and checked against its manifest."""
    module = instantiate(cfg.data, _convert_="all")
    module.setup()
    return module


def logger(cfg: DictConfig, run_id: str | None = None) -> MLFlowLogger | None:
    """The configured logger; `run_id` continues an existing MLflow run (resume)."""
    if not cfg.get("logger"):
        return None
    try:
        return instantiate(cfg.logger, **({"run_id": run_id} if run_id else {}))
    except InstantiationException as err:
        cause = err.__cause__ or err
        uri = tracking.without_credentials(cfg.logger.tracking_uri)
        raise ModelyardError(
            f"cannot open MLflow tracking store {uri}: {type(cause).__name__} {cause}"
        ) from None


def callbacks(cfg: DictConfig) -> list[L.Callback]:
    return [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]


def trainer(
    cfg: DictConfig, logger: MLFlowLogger | None, callbacks: list[L.Callback]
) -> L.Trainer:
    return instantiate(cfg.trainer, logger=logger or False, callbacks=callbacks)
