"""A sweep in MLflow: one parent run per study (search space, budget, best trial, counts),
one nested run per trial tagged with its number and Optuna state."""

from __future__ import annotations

import time

import optuna
from mlflow.entities import Param, RunTag
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf
from optuna.trial import FrozenTrial

from modelyard.tracking import store
from modelyard.tracking.store import init_lock, without_credentials

PARENT_ATTR = "mlflow_parent_run_id"
PARENT_WAIT_S = 60


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
        client = store.client(cfg.logger.tracking_uri)
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


def mark_child(client: MlflowClient | None, run_id: str | None, state: str) -> None:
    if client is None or run_id is None:
        return
    client.set_tag(run_id, "optuna.state", state)
    if state == "PRUNED":  # the exception ended it FAILED; it was stopped on purpose
        client.set_terminated(run_id, "KILLED")


def record_outcome(client: MlflowClient, parent: str, metric: str, best: FrozenTrial,
                   counts: dict[str, int]) -> None:
    """The best trial and the counts on the parent run; FINISHED once no trial runs."""
    client.log_batch(parent, metrics=[], tags=[
        RunTag(f"best.{k}", str(v)) for k, v in best.params.items()
    ] + [RunTag("best.trial", str(best.number))])
    client.log_metric(parent, f"best_{metric}", best.value)
    for state, count in counts.items():
        client.log_metric(parent, f"trials_{state}", count)
    if not counts["running"]:
        client.set_terminated(parent, "FINISHED")
