"""The Optuna study a sweep's workers share: its storage, joining it, counting its trials
against the budget, and proposing a trial's values from the search space."""

from __future__ import annotations

import time
import warnings

import optuna
from hydra.utils import instantiate
from omegaconf import DictConfig
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from modelyard.errors import ModelyardError, StoreError, one_line
from modelyard.tracking.store import init_lock, without_credentials

COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.RUNNING)


class SurplusTrial(Exception):
    """The study already has its n_trials: this trial does nothing."""


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


def report_trial(study: optuna.Study, trial: FrozenTrial) -> None:
    if trial.user_attrs.get("surplus"):
        return
    value = "" if trial.value is None else f" value {trial.value:.4f}"
    params = " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                      for k, v in trial.params.items())
    print(f"trial {trial.number}: {trial.state.name}{value}  {params}  "
          f"({counted(study)}/{study.user_attrs.get('n_trials', '?')})", flush=True)


def state_counts(study: optuna.Study) -> dict[str, int]:
    states = [t.state for t in study.get_trials(deepcopy=False)]
    return {s.name.lower(): states.count(s) for s in STATES}


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return study.best_trial if completed else None
