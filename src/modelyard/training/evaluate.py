"""`modelyard evaluate experiment=<task> ckpt_path=<file>`: test a checkpoint, record the result.

A model file carries the data config it was trained on (training/export.py), which is what it
is tested on (the command line's `data.*` overrides applied to it), not the task's defaults.
The run is linked to the run that trained the checkpoint (found by its weights hash) and
records that run's params, not this config's defaults.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf, open_dict

from modelyard import plots
from modelyard.tracking import lineage
from modelyard.tracking.run import run_that_trained, tracked_run
from modelyard.training import build, outputs
from modelyard.training.export import load_model, model_record, weights_sha256


def trained_data(cfg: DictConfig, overrides: list[str]) -> None:
    """`cfg.data` as the checkpoint's record has it, with the command line's `data.*` values
    on top; a checkpoint without a record (Lightning's own) keeps the config's."""
    recorded = model_record(Path(cfg.ckpt_path)).get("data")
    if not recorded:
        return
    data = OmegaConf.create(recorded)
    data.path = str(Path(cfg.paths.root_dir) / data.path)  # an absolute path stays itself
    mine = [o.lstrip("+") for o in overrides if o.lstrip("+").startswith("data.")]
    data = OmegaConf.merge(data, OmegaConf.from_dotlist([o.removeprefix("data.") for o in mine]))
    with open_dict(cfg):
        cfg.data = data


def evaluate(cfg: DictConfig) -> dict[str, float]:
    L.seed_everything(cfg.seed, workers=True)
    root = Path(cfg.paths.root_dir)
    output_dir = Path(HydraConfig.get().runtime.output_dir)
    model = load_model(get_class(cfg.model._target_), Path(cfg.ckpt_path))
    weights = weights_sha256(model.state_dict())
    trained_data(cfg, list(HydraConfig.get().overrides.task))
    datamodule = build.datamodule(cfg)
    logger = build.logger(cfg, job="evaluate")
    trainer = build.trainer(cfg, logger, callbacks=[])
    tags = {
        **lineage.lineage_tags(root, cfg.task, cfg.data.path, cfg.seed,
                               datamodule.manifest_sha256),
        "modelyard.job": "evaluate",
        "checkpoint": lineage.relative_to_project(Path(cfg.ckpt_path), root),
        "weights_sha256_evaluated": weights,
    }
    source = run_that_trained(logger.experiment, cfg.task, weights) if logger else None
    if source is not None:
        tags["source_run"] = source.info.run_id
    # what trained the model: its run's params, else the hyperparameters the file carries
    trained_with = source.data.params if source else {
        f"model.{k}": v for k, v in model.hparams.items() if isinstance(v, int | float | str)}
    with tracked_run(logger, cfg, tags, output_dir, params=trained_with) as run:
        metrics = trainer.test(model, datamodule=datamodule, verbose=False)[0]
        baseline = build.baseline_metrics(cfg, datamodule)
        run.log_metrics(baseline)
        run.log_figures(plots.test_figures(model.test_table(), datamodule.class_names,
                                           datamodule.target_name))
    metrics = {**metrics, **baseline}
    outputs.write_metrics(Path(cfg.metrics_file), metrics)
    outputs.write_table(output_dir / "predictions.csv", model.test_table())
    outputs.print_metrics(f"{cfg.task}: {cfg.ckpt_path}", metrics, f"outputs: {output_dir}")
    return metrics


def main() -> None:
    """The Hydra app behind `modelyard evaluate` (also how DDP starts ranks 1..n-1)."""
    from modelyard.config import hydra_app

    hydra_app("evaluate", evaluate)


if __name__ == "__main__":
    main()
