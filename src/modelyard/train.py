"""`modelyard train experiment=<task> [overrides]`: fit, test, compare with the baseline, record."""

from __future__ import annotations

from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from modelyard import build, plots, registry, report, tracking
from modelyard.callbacks import RUN_ID_KEY, EpochHistory
from modelyard.cli_errors import exit_on_user_error
from modelyard.config import CONF_DIR
from modelyard.errors import DataError


def run_id_in_checkpoint(path: str | None) -> str | None:
    """The MLflow run a checkpoint was written for (None: untracked, or no checkpoint)."""
    if not path:
        return None
    if not Path(path).is_file():
        raise DataError(f"{path}: no such checkpoint file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises many kinds for a file that is not a checkpoint
        raise DataError(f"{path}: not a readable checkpoint ({type(err).__name__})") from None
    return checkpoint.get(RUN_ID_KEY) if isinstance(checkpoint, dict) else None


def epoch_history(callbacks: list[L.Callback]) -> dict[str, list[float]]:
    return next(c.history for c in callbacks if isinstance(c, EpochHistory))


def train(cfg: DictConfig, extra_callbacks: list[L.Callback] | None = None) -> dict[str, float]:
    """Fit and test on every rank; only rank 0 records, writes outputs and registers.

    `extra_callbacks`: added by callers such as a sweep (pruning, the objective's value).
    """
    L.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)
    resumed_run = run_id_in_checkpoint(cfg.ckpt_path) if cfg.get("logger") else None
    datamodule = build.datamodule(cfg)
    fitted = datamodule.fitted_inputs()
    model = instantiate(cfg.model, _convert_="all")(**fitted)
    callbacks = [*build.callbacks(cfg), *(extra_callbacks or [])]
    logger = build.logger(cfg, run_id=resumed_run)
    trainer = build.trainer(cfg, logger, callbacks)
    chief = trainer.is_global_zero
    tags = tracking.lineage_tags(cfg, datamodule.manifest_sha256)
    if resumed_run:
        tags["resumed_from"] = str(Path(cfg.ckpt_path).resolve())

    version = None
    with tracking.tracked_run(logger if chief else None, cfg, tags, output_dir,
                              resumed=resumed_run is not None) as run:
        run.log_json(fitted, "preprocessing.json")  # standardiser, pixel stats, vocabulary
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
        # read before testing: restoring the best checkpoint rewinds the callbacks' state
        history = {k: list(v) for k, v in epoch_history(callbacks).items()}
        metrics = trainer.test(model, datamodule=datamodule, ckpt_path="best", verbose=False)[0]
        if not chief:
            return metrics
        baseline = instantiate(cfg.baseline)(datamodule) if cfg.baseline else {}
        run.log_metrics(baseline)
        metrics = {**metrics, **baseline}
        epochs = min(map(len, history.values()), default=0)
        history = {name: values[:epochs] for name, values in sorted(history.items())}
        run.log_figures({"learning_curves.png": plots.learning_curves(history)})
        run.log_figures(model.test_figures())
        best_checkpoint = trainer.checkpoint_callback.best_model_path
        run.log_artifact(best_checkpoint, "checkpoints")
        if run.run_id:
            version = registry.log_and_register(
                cfg, run.run_id, model, best_checkpoint, datamodule, tags, metrics
            )

    report.write_metrics(output_dir / "metrics.json", metrics)
    report.write_table(output_dir / "history.csv", {"epoch": range(1, epochs + 1), **history})
    report.print_metrics(
        f"{cfg.task}: test metrics", metrics,
        f"outputs: {output_dir}"
        + (f"\nMLflow run: {run.run_id}" if run.run_id else "")
        + (f"\nregistered: models:/{version.name}/{version.version}" if version else ""),
    )
    return metrics


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def main(cfg: DictConfig) -> None:
    with exit_on_user_error():
        train(cfg)


if __name__ == "__main__":  # how Lightning's DDP launcher starts ranks 1..n-1 (see cli.py)
    main()
