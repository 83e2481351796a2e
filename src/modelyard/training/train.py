"""`modelyard train experiment=<task> [overrides]`: fit, test, compare with the baseline,
record; then register the model (its own step: `train()` itself never touches the registry)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig

from modelyard import plots, tasks
from modelyard.errors import DataError
from modelyard.tracking import datasets, lineage
from modelyard.tracking.run import tracked_run
from modelyard.training import build, outputs
from modelyard.training.callbacks import RUN_ID_KEY, EpochHistory
from modelyard.training.export import export_model, trained_on

MODEL_FILE = "model.ckpt"  # the exported weights (DVC out of the pipeline's train stage)


@dataclass
class TrainResult:
    """What a caller needs after training: on ranks > 0 only `metrics` is set."""

    metrics: dict[str, float]
    run_id: str | None = None
    model_file: Path | None = None
    weights_sha256: str | None = None
    model: L.LightningModule | None = None
    datamodule: Any = None


def run_id_in_checkpoint(path: str | None) -> str | None:
    """The MLflow run a Lightning checkpoint was written for (None: untracked, or none)."""
    if not path:
        return None
    if not Path(path).is_file():
        raise DataError(f"{path}: no such checkpoint file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many kinds for a file that is not a checkpoint
        raise DataError(f"{path}: not a readable checkpoint ({type(err).__name__})") from None
    return checkpoint.get(RUN_ID_KEY) if isinstance(checkpoint, dict) else None


def epoch_history(callbacks: list[L.Callback]) -> dict[str, list[float]]:
    history = next(c.history for c in callbacks if isinstance(c, EpochHistory))
    epochs = min(map(len, history.values()), default=0)
    return {name: list(values[:epochs]) for name, values in sorted(history.items())}


def fit(trainer: L.Trainer, model: L.LightningModule, datamodule: Any,
        ckpt_path: str | None) -> None:
    """`trainer.fit`. A SIGTERM (a timeout, a container stop, a preemption) stops it after the
    current batch; nothing is saved there: `resume=true` carries on from last.ckpt of the last
    finished epoch, because Lightning cannot resume a plain DataLoader mid-epoch faithfully (the
    restarted epoch would lack its validation, and the run would differ from an unbroken one)."""
    # weights_only: a resumed checkpoint holds tensors, numbers, strings and lists only
    # (callbacks.ResumableRun stores the RNG states so), and nothing pickled is run
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)


def train(cfg: DictConfig, extra_callbacks: list[L.Callback] | None = None) -> TrainResult:
    """Fit and test on every rank; only rank 0 records and writes outputs.

    `extra_callbacks`: added by callers such as a sweep (pruning, the objective's value).
    """
    L.seed_everything(cfg.seed, workers=True)
    root, output_dir = Path(cfg.paths.root_dir), Path(cfg.paths.output_dir)
    resumed_run = run_id_in_checkpoint(cfg.ckpt_path) if cfg.get("logger") else None
    datamodule = build.datamodule(cfg)
    tasks.check_data(cfg, datamodule)  # the declaration fits this data: before any run opens
    fitted = datamodule.fitted_inputs()
    model = build.model(cfg, fitted)
    callbacks = [*build.callbacks(cfg), *(extra_callbacks or [])]
    logger = build.logger(cfg, run_id=resumed_run)
    trainer = build.trainer(cfg, logger, callbacks)
    chief = trainer.is_global_zero
    tags = lineage.lineage_tags(root, cfg.task, cfg.data.path, cfg.seed,
                                datamodule.manifest_sha256)
    if resumed_run:
        tags["resumed_from"] = str(Path(cfg.ckpt_path).resolve())

    with tracked_run(logger if chief else None, cfg, tags, output_dir,
                     resumed=resumed_run is not None) as run:
        if not resumed_run:
            run.log_datasets(datasets.split_datasets(datamodule, tags["data.path"],
                                                     tags.get("dvc.data_md5")))
        run.log_json(fitted, "preprocessing.json")  # standardiser, pixel stats, vocabulary
        fit(trainer, model, datamodule, cfg.ckpt_path)
        # read before testing: restoring the best checkpoint rewinds the callbacks' state
        history = epoch_history(callbacks)
        metrics = trainer.test(model, datamodule=datamodule, ckpt_path="best", verbose=False,
                               weights_only=True)[0]
        if not chief:
            return TrainResult(metrics)
        baseline = build.baseline_metrics(cfg, datamodule)
        run.log_metrics(baseline)
        metrics = {**metrics, **baseline}
        run.log_figures({
            "learning_curves.png": plots.learning_curves(history, cfg.task),
            **plots.test_figures(model.test_table(), datamodule.class_names,
                                 datamodule.target_name, cfg.task),
        })
        model_file = output_dir / MODEL_FILE  # the best weights: test() restored them
        weights = export_model(model, model_file, trained_on(cfg, datamodule))
        run.log_artifact(model_file, "checkpoints")
        run.set_tags({"weights_sha256": weights})

    outputs.write_metrics(output_dir / "metrics.json", metrics)
    outputs.write_table(output_dir / "history.csv",
                        {"epoch": range(1, min(map(len, history.values()), default=0) + 1),
                         **history})
    outputs.print_metrics(f"{cfg.task}: test metrics", metrics, f"outputs: {output_dir}"
                          + (f"\nMLflow run: {run.run_id}" if run.run_id else ""))
    return TrainResult(metrics, run.run_id, model_file, weights, model, datamodule)


def main() -> None:
    """The Hydra app behind `modelyard train` (also how DDP starts ranks 1..n-1)."""
    from modelyard.config import hydra_app

    hydra_app("train", run)


def run(cfg: DictConfig) -> None:
    result = train(cfg)
    if result.run_id and cfg.registry.register:
        from modelyard.registry.register import register

        version = register(cfg, result.model_file, result.datamodule, result.run_id)
        print(f"registered: models:/{version.name}/{version.version}")


if __name__ == "__main__":
    main()
