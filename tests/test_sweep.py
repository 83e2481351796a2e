"""`modelyard sweep`: an Optuna study in shared storage, a parent MLflow run with one nested run
per trial, pruning, resuming, concurrent workers; and plain Hydra multirun."""

from __future__ import annotations

import subprocess
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from conftest import MODELYARD, all_runs, cli_env, run_cli

STUDY = "market_regressor_optuna"
SWEEP = ["sweep", "experiment=market_regressor", f"hparams_search={STUDY}",
         "trainer.max_epochs=3"]
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)


def sweep_args(data_dir: Path, tmp_path: Path, n_trials: int) -> list[str]:
    return [*SWEEP, f"n_trials={n_trials}", f"paths.data_dir={data_dir}",
            f"paths.output_root={tmp_path}/outputs"]


def finished(storage: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=STUDY, storage=storage).get_trials(states=COUNTED)


def split_runs(tracking: dict[str, str]) -> tuple[list, list]:
    runs = all_runs(tracking)
    parents = [r for r in runs if r.data.tags.get("modelyard.job") == "sweep"]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return parents, children


@pytest.mark.slow
def test_sweep_records_trials_prunes_and_resumes_without_repeating(
    data_dir: Path, tmp_path: Path, tracking
) -> None:
    env = {**tracking, "MODELYARD_OPTUNA_STORAGE": f"sqlite:///{tmp_path}/optuna.db"}
    storage = env["MODELYARD_OPTUNA_STORAGE"]
    first = run_cli(*sweep_args(data_dir, tmp_path, 4), env=env, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    trials = finished(storage)
    assert len(trials) == 4
    # the space reaches lr=1e-5, hopeless in 3 epochs: the median pruner stops such trials
    assert any(t.state == TrialState.PRUNED for t in trials)

    [parent], children = split_runs(tracking)
    assert len(children) == 4
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    for child in children:
        state = child.data.tags["optuna.state"]
        assert state in ("COMPLETE", "PRUNED")
        assert child.info.status == ("FINISHED" if state == "COMPLETE" else "KILLED")
    best = optuna.load_study(study_name=STUDY, storage=storage).best_trial
    assert parent.data.metrics["best_val_mse"] == pytest.approx(best.value)
    assert parent.data.tags["best.trial"] == str(best.number)

    again = run_cli(*sweep_args(data_dir, tmp_path, 4), env=env, timeout=600)
    assert again.returncode == 0 and "already has 4 of 4" in again.stdout
    more = run_cli(*sweep_args(data_dir, tmp_path, 6), env=env, timeout=600)
    assert more.returncode == 0, more.stderr[-3000:]
    assert len(finished(storage)) == 6
    assert len(optuna.load_study(study_name=STUDY, storage=storage).trials) == 6
    parents, children = split_runs(tracking)
    assert len(parents) == 1 and len(children) == 6


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_workers_share_one_study_and_stop_at_its_budget(
    backend: str, request: pytest.FixtureRequest, data_dir: Path, tmp_path: Path, tracking
) -> None:
    storage = (f"sqlite:///{tmp_path}/optuna.db" if backend == "sqlite"
               else request.getfixturevalue("postgres_url"))
    env = cli_env({**tracking, "MODELYARD_OPTUNA_STORAGE": storage})
    workers = [subprocess.Popen([MODELYARD, *sweep_args(data_dir, tmp_path, 6)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    outputs = [w.communicate(timeout=900) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs[0][1][-3000:]
    assert all("trial " in out for out, _ in outputs)  # both workers ran trials
    assert len(finished(storage)) == 6
    parents, children = split_runs(tracking)
    assert len(parents) == 1 and len(children) == 6


def test_sweep_config_mistakes_and_an_unusable_study_storage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelyard.config import check_overrides
    from modelyard.errors import ConfigError, StoreError
    from modelyard.sweep import sweep

    def config_error(*overrides: str) -> str:
        with pytest.raises(ConfigError) as caught:
            check_overrides("sweep", list(overrides))
        assert "\n" not in str(caught.value)
        return str(caught.value)

    assert "hparams_search" in config_error("experiment=market_regressor")
    assert STUDY in config_error("experiment=market_regressor", "hparams_search=nope")
    monkeypatch.setenv("MODELYARD_OPTUNA_STORAGE",
                       "postgresql://alice:pw-secret@127.0.0.1:9/optuna")
    cfg = check_overrides("sweep", [*SWEEP[1:], "n_trials=2",
                                    f"logger.tracking_uri=sqlite:///{tmp_path}/mlflow.db"])
    with pytest.raises(StoreError) as caught:
        sweep(cfg)
    message = str(caught.value)
    assert "Optuna storage postgresql://127.0.0.1:9/optuna" in message
    assert "pw-secret" not in message and "\n" not in message
    assert not (tmp_path / "mlflow.db").exists()  # refused before any MLflow run


@pytest.mark.slow
def test_sweep_mistakes_are_one_line(tracking, tmp_path: Path) -> None:
    def error_of(*args: str, env: dict[str, str] | None = None) -> str:
        result = run_cli(*args, env={**tracking, **(env or {})}, timeout=120)
        assert result.returncode == 2 and result.stderr.startswith("modelyard: error:")
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr[-2000:]
        return result.stderr

    assert "hparams_search" in error_of("sweep", "experiment=market_regressor")
    assert "market_regressor_optuna" in error_of("sweep", "experiment=market_regressor",
                                                 "hparams_search=nope")
    dead = "postgresql://alice:pw-secret@127.0.0.1:9/optuna"
    message = error_of(*SWEEP, "n_trials=2", f"paths.output_root={tmp_path}/outputs",
                       env={"MODELYARD_OPTUNA_STORAGE": dead})  # no job directory in the checkout
    assert "Optuna storage postgresql://127.0.0.1:9/optuna" in message
    assert "pw-secret" not in message


@pytest.mark.slow
@pytest.mark.parametrize("launcher", [[], ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]])
def test_multirun_gives_one_run_and_one_directory_per_job(
    launcher: list[str], data_dir: Path, tmp_path: Path, tracking
) -> None:
    result = run_cli("train", "-m", "experiment=market_regressor", "debug=fast",
                     "model.lr=1e-3,3e-3", *launcher, f"paths.data_dir={data_dir}",
                     f"paths.output_root={tmp_path}/outputs", env=tracking)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = all_runs(tracking)
    assert sorted(r.data.params["model.lr"] for r in runs) == ["0.001", "0.003"]
    jobs = [p for p in (tmp_path / "outputs" / "market_regressor").glob("multirun_*/*")
            if p.is_dir()]
    assert len(jobs) == 2 and all((job / "metrics.json").exists() for job in jobs)
