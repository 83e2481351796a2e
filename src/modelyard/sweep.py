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
import warnings
from pathlib import Path

import lightning as L
import optuna
from hydra.utils import instantiate
from mlflow.entities import Param, RunTag
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState
from optuna_integration import PyTorchLightningPruningCallback

from modelyard.errors import ModelyardError, StoreError, one_line
from modelyard.tracking.store import init_lock, without_credentials
from modelyard.training.train import train

COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
PARENT_ATTR = "mlflow_parent_run_id"
PARENT_WAIT_S = 60


class SurplusTrial(Exception):
    """The study already has its n_trials: this trial does nothing."""


class BestValue(L.Callback):
    """The best value of the monitored validation metric (the trial's objective), and the
    trial's MLflow run, known even when the trial is pruned."""

    def __init__(self, metric: str, maximize: bool) -> None:
        self.metric, self.maximize, self.best = metric, maximize, None
        self.run_id: str | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.run_id = getattr(trainer.logger, "run_id", None)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.metric not in trainer.callback_metrics:
            return
        value = float(trainer.callback_metrics[self.metric])
        if self.best is None or (value > self.best if self.maximize else value < self.best):
            self.best = value


SCHEMA_ATTEMPTS = 3


def rdb_storage(cfg: DictConfig) -> RDBStorage:
    """The study's storage. Workers starting together on a fresh database race to create its
    tables: SQLite opens are serialised by a file lock; on a server database the loser's
    insert fails on a unique key, and it tries again, finding the tables made."""
    import sqlalchemy

    def make() -> RDBStorage:
        with init_lock(cfg.study.storage), warnings.catch_warnings():
            # (heartbeats are "experimental" since Optuna 2.9)
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(
                cfg.study.storage,
                heartbeat_interval=cfg.study.heartbeat_s,
                grace_period=3 * cfg.study.heartbeat_s,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=2),
                engine_kwargs={"connect_args": {"connect_timeout": 5}}
                if cfg.study.storage.startswith("postgresql") else None,
            )

    for attempt in range(1, SCHEMA_ATTEMPTS):
        try:
            return make()
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            # PostgreSQL reports the lost race as a duplicate key or a duplicate table
            time.sleep(attempt)
    return make()


def open_study(cfg: DictConfig) -> tuple[optuna.Study, bool]:
    """Create the study, or join it; True when this worker created it."""
    try:
        storage = rdb_storage(cfg)
    except Exception as err:  # SQLAlchemy and driver errors of every kind
        raise StoreError(
            f"Optuna storage {without_credentials(cfg.study.storage)} is unusable: "
            f"{one_line(err)}"
        ) from None
    kwargs = {
        "study_name": cfg.study.name,
        "storage": storage,
        "direction": cfg.search.direction,
        "sampler": instantiate(cfg.search.sampler),
        "pruner": instantiate(cfg.pruner),
    }
    try:
        return optuna.create_study(**kwargs), True
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(**{k: v for k, v in kwargs.items() if k != "direction"})
        # a joining worker with the creator's seed would propose the creator's trials again
        study.sampler.reseed_rng()
        return study, False


def counted(study: optuna.Study, before: int | None = None) -> int:
    trials = study.get_trials(deepcopy=False, states=COUNTED)
    return sum(1 for t in trials if before is None or t.number < before)


def parent_run(study: optuna.Study, created: bool, cfg: DictConfig) -> tuple[MlflowClient, str]:
    """The study's MLflow parent run: made by the study's creator, found by the others.

    Joiners wait for it before they touch the tracking store at all: two processes creating
    a fresh SQLite store at once collide in MLflow's schema migration.
    """
    deadline = time.monotonic() + (0 if created else PARENT_WAIT_S)
    while PARENT_ATTR not in study.user_attrs and time.monotonic() < deadline:
        time.sleep(0.5)
        study = optuna.load_study(study_name=study.study_name, storage=study._storage)
    with init_lock(cfg.logger.tracking_uri):
        client = MlflowClient(cfg.logger.tracking_uri)
    if PARENT_ATTR in study.user_attrs:
        return client, study.user_attrs[PARENT_ATTR]
    experiment = client.get_experiment_by_name(cfg.task)
    experiment_id = (experiment.experiment_id if experiment else
                     client.create_experiment(cfg.task, cfg.logger.artifact_location))
    run = client.create_run(experiment_id, run_name=f"sweep {study.study_name}", tags={
        "modelyard.job": "sweep", "modelyard.task": cfg.task,
        "optuna.study_name": study.study_name,
        "optuna.storage": without_credentials(cfg.study.storage),
    })
    client.log_batch(run.info.run_id, params=[
        *[Param(f"space.{k}", str(OmegaConf.to_container(v)))
          for k, v in cfg.search.space.items()],
        Param("n_trials", str(cfg.n_trials)), Param("metric", cfg.search.metric),
        Param("direction", cfg.search.direction), Param("pruner", cfg.pruner._target_),
        Param("sampler", cfg.search.sampler._target_),
    ])
    study.set_user_attr(PARENT_ATTR, run.info.run_id)
    return client, run.info.run_id


def suggest(trial: optuna.Trial, space: DictConfig) -> dict[str, object]:
    values = {}
    for key, spec in space.items():
        if spec.type == "float":
            values[key] = trial.suggest_float(key, spec.low, spec.high, log=spec.get("log", False))
        elif spec.type == "int":
            values[key] = trial.suggest_int(key, spec.low, spec.high, log=spec.get("log", False))
        elif spec.type == "categorical":
            values[key] = trial.suggest_categorical(key, list(spec.choices))
        else:
            raise ModelyardError(f"search space {key}: type must be float, int or categorical")
    return values


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


def mark_child(client: MlflowClient | None, run_id: str | None, state: str) -> None:
    if client is None or run_id is None:
        return
    client.set_tag(run_id, "optuna.state", state)
    if state == "PRUNED":  # the exception ended it FAILED; it was stopped on purpose
        client.set_terminated(run_id, "KILLED")


def report_trial(study: optuna.Study, trial: FrozenTrial) -> None:
    if trial.user_attrs.get("surplus"):
        return
    value = "" if trial.value is None else f" value {trial.value:.4f}"
    params = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                      for k, v in trial.params.items())
    print(f"trial {trial.number}: {trial.state.name}{value}  {params}  "
          f"({counted(study)}/{study.user_attrs.get('n_trials', '?')})", flush=True)


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

    states = [t.state for t in study.get_trials(deepcopy=False)]
    counts = {s.name.lower(): states.count(s) for s in (TrialState.COMPLETE, TrialState.PRUNED,
                                                          TrialState.FAIL, TrialState.RUNNING)}
    table = Table(title=f"sweep {study.study_name}: {cfg.search.direction} {cfg.search.metric}")
    for column in ("", "value"):
        table.add_column(column)
    completed = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    if completed:
        best = study.best_trial
        table.add_row(f"best: trial {best.number}", f"{best.value:.4f}")
        for key, value in best.params.items():
            table.add_row(f"  {key}", f"{value:.4g}" if isinstance(value, float) else str(value))
    for state, count in counts.items():
        table.add_row(f"trials {state}", str(count))
    table.add_row("this worker's wall time", f"{seconds:.1f} s")
    Console(width=120).print(table)
    if client and parent and completed:
        best = study.best_trial
        client.log_batch(parent, metrics=[], tags=[
            RunTag(f"best.{k}", str(v)) for k, v in best.params.items()
        ] + [RunTag("best.trial", str(best.number))])
        client.log_metric(parent, f"best_{cfg.search.metric}", best.value)
        for state, count in counts.items():
            client.log_metric(parent, f"trials_{state}", count)
        if not counts["running"]:
            client.set_terminated(parent, "FINISHED")


def main() -> None:
    """The Hydra app behind `modelyard sweep`."""
    from modelyard.config import hydra_app

    hydra_app("sweep", sweep)


if __name__ == "__main__":
    main()
