"""`modelyard evaluate experiment=<task> ckpt_path=<file>`: test a checkpoint, record the result."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig

from modelyard import build, report, tracking
from modelyard.cli_errors import exit_on_user_error
from modelyard.config import CONF_DIR
from modelyard.errors import DataError


def load_checkpoint(cfg: DictConfig) -> L.LightningModule:
    model_class = get_class(cfg.model._target_)
    path = Path(cfg.ckpt_path)
    if not path.is_file():
        raise DataError(f"{path}: no such checkpoint file")
    try:
        return model_class.load_from_checkpoint(path, map_location="cpu")
    except (RuntimeError, EOFError, KeyError, TypeError, pickle.UnpicklingError,
            zipfile.BadZipFile) as err:
        raise DataError(
            f"{path}: not a readable {model_class.__name__} checkpoint ({str(err).splitlines()[0]})"
        ) from None


def evaluate(cfg: DictConfig) -> dict[str, float]:
    L.seed_everything(cfg.seed, workers=True)
    output_dir = Path(HydraConfig.get().runtime.output_dir)
    model = load_checkpoint(cfg)
    datamodule = build.datamodule(cfg)
    logger = build.logger(cfg)
    trainer = build.trainer(cfg, logger, callbacks=[])
    tags = {
        **tracking.lineage_tags(cfg, datamodule.manifest_sha256),
        "modelyard.job": "evaluate",
        "checkpoint": str(Path(cfg.ckpt_path).resolve()),
    }
    with tracking.tracked_run(logger, cfg, tags, output_dir) as run:
        metrics = trainer.test(model, datamodule=datamodule, verbose=False)[0]
        baseline = instantiate(cfg.baseline)(datamodule) if cfg.baseline else {}
        run.log_metrics(baseline)
        run.log_figures(model.test_figures())
    metrics = {**metrics, **baseline}
    report.write_metrics(Path(cfg.metrics_file), metrics)
    report.write_table(output_dir / "predictions.csv", model.test_table())
    report.print_metrics(f"{cfg.task}: {cfg.ckpt_path}", metrics, f"outputs: {output_dir}")
    return metrics


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="evaluate")
def main(cfg: DictConfig) -> None:
    with exit_on_user_error():
        evaluate(cfg)


if __name__ == "__main__":  # how Lightning's DDP launcher starts ranks 1..n-1 (see cli.py)
    main()
