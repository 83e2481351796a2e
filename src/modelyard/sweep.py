"""`modelyard sweep experiment=<task> hparams_search=<name> [n_trials=N]`: an Optuna 4 study
over the search space in conf/hparams_search/, trials pruned on the validation metric.

- The study lives in an Optuna RDB storage (SQLite file, or PostgreSQL to share it): more
  workers join by running the same command, and a re-run carries on an interrupted study.
- `n_trials` is the study's total across workers: a trial counts once COMPLETE or PRUNED, or
  while RUNNING. A worker that finds the budget taken when its trial starts records that empty
  trial as FAIL (user attr `surplus`) and stops; a trial whose worker died (no heartbeat) is
  failed and retried with the same parameters.
- MLflow: one parent run per study (created by the worker that created the study), one nested
  run per trial tagged with its number and state; the parent records the best trial.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import optuna
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf
from optuna.trial import FrozenTrial
from optuna_integration import PyTorchLightningPruningCallback

from modelyard.errors import ModelyardError
from modelyard.study import (
    SurplusTrial,
    best_trial,
    counted,
    open_study,
    report_trial,
    state_counts,
    suggest,
)
from modelyard.tracking.store import without_credentials
from modelyard.tracking.sweep_runs import mark_child, parent_run, record_outcome
from modelyard.training.callbacks import BestValue
from modelyard.training.train import train


def trial_config(cfg: DictConfig, trial: optuna.Trial, values: dict, parent: str) -> DictConfig:
    trial_cfg = copy.deepcopy(cfg)
    for key, value in values.items():
        OmegaConf.update(trial_cfg, key, value, merge=False)
    trial_cfg.paths.output_dir = str(Path(cfg.paths.output_dir) / f"trial_{trial.number}")
    if trial_cfg.get("logger"):
        trial_cfg.logger.run_name = f"{cfg.study.name} trial {trial.number}"
        trial_cfg.logger.tags = {"mlflow.parentRunId": parent, "optuna.trial_number":
                                 str(trial.number), "optuna.study_name": cfg.study.name}
    return trial_cfg


def objective(cfg: DictConfig, parent: str, client: MlflowClient):
    def run_trial(trial: optuna.Trial) -> float:
        if counted(trial.study, before=trial.number) >= cfg.n_trials:
            trial.set_user_attr("surplus", True)
            raise SurplusTrial
        values = suggest(trial, cfg.search.space)
        trial_cfg = trial_config(cfg, trial, values, parent)
        best = BestValue(cfg.search.metric, cfg.search.direction == "maximize")
        pruning = PyTorchLightningPruningCallback(trial, monitor=cfg.search.metric)
        try:
            train(trial_cfg, extra_callbacks=[best, pruning])
        except optuna.TrialPruned:
            mark_child(client, best.run_id, "PRUNED")
            raise
        mark_child(client, best.run_id, "COMPLETE")
        if best.best is None:
            raise ModelyardError(f"trial {trial.number} logged no {cfg.search.metric}")
        return best.best

    return run_trial


def sweep(cfg: DictConfig) -> optuna.Study:
    study, created = open_study(cfg)
    study.set_user_attr("n_trials", cfg.n_trials)
    client, parent = parent_run(study, created, cfg) if cfg.get("logger") else (None, None)
    start = time.monotonic()
    already = counted(study)
    if already >= cfg.n_trials:
        print(f"study {study.study_name} already has {already} of {cfg.n_trials} trials")
    else:
        print(f"study {study.study_name}: {already} of {cfg.n_trials} trials done; "
              f"storage {without_credentials(cfg.study.storage)}", flush=True)

        def stop_at_budget(study: optuna.Study, trial: FrozenTrial) -> None:
            if trial.user_attrs.get("surplus") or counted(study) >= cfg.n_trials:
                study.stop()

        study.optimize(objective(cfg, parent, client), catch=(SurplusTrial,),
                       callbacks=[report_trial, stop_at_budget], gc_after_trial=True)
    summarise(study, cfg, client, parent, time.monotonic() - start)
    return study


def summarise(study: optuna.Study, cfg: DictConfig, client: MlflowClient | None,
              parent: str | None, seconds: float) -> None:
    from rich.console import Console
    from rich.table import Table

    counts, best = state_counts(study), best_trial(study)
    table = Table(title=f"sweep {study.study_name}: {cfg.search.direction} {cfg.search.metric}")
    for column in ("", "value"):
        table.add_column(column)
    if best:
        table.add_row(f"best: trial {best.number}", f"{best.value:.4f}")
        for key, value in best.params.items():
            table.add_row(f"  {key}", f"{value:.4g}" if isinstance(value, float) else str(value))
    for state, count in counts.items():
        table.add_row(f"trials {state}", str(count))
    table.add_row("this worker's wall time", f"{seconds:.1f} s")
    Console(width=120).print(table)
    if client and parent and best:
        record_outcome(client, parent, cfg.search.metric, best, counts)


def main() -> None:
    """The Hydra app behind `modelyard sweep`."""
    from modelyard.config import hydra_app

    hydra_app("sweep", sweep)


if __name__ == "__main__":
    main()
