"""Lineage through the everyday DVC and MLflow workflows, on clean clones of the committed
repository: queued experiments run the queued code and record in the repository that queued
them, pipeline runs are not dirty, the model file is byte-identical wherever it is trained,
a plotting change re-runs only the plots, DVC's run-cache restores a training in another clone
(which then registers the restored file), and direct `modelyard` commands record what an
evaluation tested, which data a run read, and keep a user's own data apart from the shipped
model.

market_regressor is trained for 2 epochs (committed to each clone's params.yaml), so every
training takes seconds; each clone has a local DVC remote of the test's own."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from conftest import ROOT, dvc, run_cli

TASK = "market_regressor"
NAME = "market-regressor"
TRAIN = f"train@{TASK}"
PLOTS = f"plots@{TASK}"       # the end of the market chain: prepare, train, evaluate, plots
REGISTER = f"register@{TASK}"
MODEL = Path("pipeline") / TASK / "train" / "model.ckpt"
EPOCHS = 2


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def clean_clone(target: Path, remote: Path) -> Path:
    """A clone of the committed repository with market_regressor at EPOCHS epochs (committed,
    so the clone is clean) and `remote` as its default DVC remote (config.local, untracked)."""
    git("clone", "--quiet", str(ROOT), str(target), cwd=target.parent)
    git("config", "user.email", "t@example.org", cwd=target)
    git("config", "user.name", "test", cwd=target)
    params = target / "params.yaml"
    values = yaml.safe_load(params.read_text())
    values["tasks"][TASK]["trainer"]["max_epochs"] = EPOCHS
    params.write_text(yaml.safe_dump(values, sort_keys=False))
    git("commit", "-qam", f"{TASK}: {EPOCHS} epochs", cwd=target)
    dvc("remote", "add", "--local", "-d", "-f", "local", str(remote), cwd=target)
    return target


def modelyard(clone: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """`modelyard` outside DVC, run in `clone` with the clone's own code."""
    result = run_cli(*args, env={"PYTHONPATH": str(clone / "src")}, cwd=clone)
    if check:
        assert result.returncode == 0, f"modelyard {' '.join(args)}:\n{result.stderr[-3000:]}"
    return result


def client(clone: Path) -> MlflowClient:
    """The clone's own tracking store: the default `sqlite:///<project>/mlflow.db`."""
    uri = f"sqlite:///{clone}/mlflow.db"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def runs(clone: Path) -> list[Run]:
    if not (clone / "mlflow.db").exists():
        return []
    store = client(clone)
    experiments = [e.experiment_id for e in store.search_experiments()]
    return store.search_runs(experiments) if experiments else []


def training_runs(clone: Path) -> list[Run]:
    """Runs of `modelyard train` (evaluations and imports carry a modelyard.job tag)."""
    return [r for r in runs(clone) if "modelyard.job" not in r.data.tags
            and r.data.tags.get("modelyard.task") == TASK]


def status(clone: Path, *targets: str) -> dict:
    return json.loads(dvc("status", "--json", *targets, cwd=clone).stdout)


@dataclass
class Project:
    path: Path
    remote: Path


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """Clone A: the market chain reproduced once (prepare, train, evaluate, plots), with the
    default tracking store (no MLFLOW_TRACKING_URI), as a user of a fresh checkout runs it."""
    with pytest.MonkeyPatch.context() as env:
        for var in ("MLFLOW_TRACKING_URI", "MODELYARD_ROOT", "DVC_ROOT", "DVC_EXP_NAME"):
            env.delenv(var, raising=False)
        base = tmp_path_factory.mktemp("lineage")
        remote = base / "dvc-remote"
        a = clean_clone(base / "a", remote)
        dvc("repro", PLOTS, cwd=a)
        yield Project(a, remote)


@pytest.mark.slow
def test_pipeline_runs_are_clean_deterministic_and_restored_from_the_run_cache(
    project: Project, tmp_path: Path
) -> None:
    a = project.path
    lock = yaml.safe_load((a / "dvc.lock").read_text())["stages"]
    [trained] = [r for r in training_runs(a) if r.data.tags.get("dvc.stage") == TRAIN
                 and "dvc.exp_name" not in r.data.tags]
    tags = trained.data.tags
    # a pipeline run is not dirty: DVC rewrote dvc.lock and deleted the stage's outs before
    # the job started, and neither is a source of the model
    assert tags["git.dirty"] == "false", tags
    assert tags["git.sha"] == git("rev-parse", "HEAD", cwd=a)
    assert tags["data.path"] == "data/market"
    assert tags["dvc.data_md5"] == lock["prepare@market"]["outs"][0]["md5"]
    assert trained.data.params["trainer.max_epochs"] == str(EPOCHS)
    assert {o["path"]: o["md5"] for o in lock[TRAIN]["outs"]}[str(MODEL)] == md5(a / MODEL)

    # a change to plotting code re-runs the plots, never a training or an evaluation
    assert status(a, PLOTS) == {}
    before = status(a)
    plots_py = a / "src" / "modelyard" / "plots.py"
    original = plots_py.read_text()
    plots_py.write_text(original + "\n# a change to how the figures look\n")
    try:
        market, everything = status(a, PLOTS), status(a)
    finally:
        plots_py.write_text(original)
    assert list(market) == [PLOTS], market
    newly_changed = set(everything) - set(before)  # every task's plots, and only plots
    assert PLOTS in newly_changed and all(s.startswith("plots@") for s in newly_changed), everything
    assert "src/modelyard/plots.py" in json.dumps(market[PLOTS])
    assert status(a, PLOTS) == {}

    # run-cache: clone B, same commit and params, restores A's training from the remote
    dvc("push", "--run-cache", cwd=a)
    b = clean_clone(tmp_path / "b", project.remote)
    dvc("pull", "--run-cache", "--allow-missing", cwd=b)
    restored = dvc("repro", "--pull", TRAIN, cwd=b)
    assert f"Stage '{TRAIN}' is cached - skipping run" in restored.stdout, restored.stdout
    # nothing trained: only the seconds-long `tasks` stage, whose files are in git (uncached,
    # so not in the run-cache), ran again for B's params
    assert re.findall(r"Running stage '([^']+)'", restored.stdout) in ([], ["tasks"]), \
        restored.stdout
    assert md5(b / MODEL) == md5(a / MODEL)
    assert training_runs(b) == []

    # ... and registers the restored file, from an 'imported' run that says where it came from
    modelyard(b, "models", "register", TASK)
    store = client(b)
    version = store.get_model_version_by_alias(NAME, "challenger")
    imported = store.get_run(version.run_id)
    assert imported.data.tags["modelyard.job"] == "register"
    assert imported.data.tags["registered_from"] == str(MODEL)
    assert version.tags["registered_from"] == str(MODEL)
    assert version.tags["source_run"] == imported.info.run_id
    assert version.tags["weights_sha256"] == tags["weights_sha256"]
    assert version.tags["git.dirty"] == "false"
    again = modelyard(b, "models", "register", TASK)  # idempotent: the same version
    assert f"models:/{NAME}/{version.version} " in again.stdout
    assert len(store.search_model_versions(f"name='{NAME}'")) == 1

    # the same stage trained for real in clone B: a byte-identical model file
    retrained = dvc("repro", "--force", "--single-item", TRAIN, cwd=b)
    assert f"Running stage '{TRAIN}'" in retrained.stdout
    [b_run] = training_runs(b)
    assert b_run.data.tags["weights_sha256"] == tags["weights_sha256"]
    assert b_run.data.tags["git.dirty"] == "false"
    assert md5(b / MODEL) == md5(a / MODEL)


@pytest.mark.slow
def test_queued_experiment_runs_the_queued_code_and_records_in_the_queuing_repo(
    project: Project,
) -> None:
    a = project.path
    regressor = a / "src" / "modelyard" / "models" / "regressor.py"
    original = regressor.read_text()
    regressor.write_text(original + '\nprint("MARKER", flush=True)\n')
    try:
        dvc("exp", "run", "--queue", "-n", "queued-marker", "-S",
            f"tasks.{TASK}.trainer.max_epochs=3", REGISTER, cwd=a)
    finally:
        regressor.write_text(original)  # the job must run what was queued, not this
    assert git("status", "--porcelain", "--", "src", cwd=a) == ""

    dvc("queue", "start", "-j", "1", cwd=a)
    deadline = time.monotonic() + 420  # a hang guard, not a timing claim
    while True:
        rows = [line.split() for line in dvc("queue", "status", cwd=a).stdout.splitlines()]
        state = next((row[-1] for row in rows if "queued-marker" in row), None)
        if state not in ("Queued", "Running") or time.monotonic() > deadline:
            break
        time.sleep(2)
    logs = dvc("queue", "logs", "queued-marker", cwd=a).stdout
    assert state == "Success", f"{state}:\n{logs[-4000:]}"
    assert "MARKER" in logs

    # the run and its version are in A's own store, not in the deleted temporary workspace
    baseline = git("rev-parse", "HEAD", cwd=a)
    [run] = [r for r in training_runs(a) if r.data.tags.get("dvc.exp_name") == "queued-marker"]
    assert run.data.tags["dvc.exp_baseline"] == baseline
    assert run.data.tags["dvc.stage"] == TRAIN
    assert run.data.tags["git.dirty"] == "true"  # it ran code its baseline commit does not hold
    assert run.data.params["trainer.max_epochs"] == "3"
    [version] = [v for v in client(a).search_model_versions(f"name='{NAME}'")
                 if v.tags.get("dvc.exp_name") == "queued-marker"]
    assert version.tags["source_run"] == run.info.run_id
    assert version.tags["dvc.exp_baseline"] == baseline
    assert not list((a / ".dvc" / "tmp" / "exps").glob("*/mlflow.db"))


@pytest.mark.slow
def test_direct_commands_record_datasets_trained_params_and_keep_user_data_apart(
    project: Project, tmp_path: Path
) -> None:
    a = project.path
    store = client(a)
    trained = modelyard(a, "train", f"experiment={TASK}", "debug=fast", "model.lr=0.003")
    run_id = re.search(r"MLflow run: (\w+)", trained.stdout).group(1)
    output_dir = Path(re.search(r"outputs: (\S+)", trained.stdout).group(1))
    run = store.get_run(run_id)

    # every split the run read is an MLflow dataset, by context, sourced by repo path + md5
    contexts = {tag.value: d.dataset for d in run.inputs.dataset_inputs for tag in d.tags
                if tag.key == "mlflow.data.context"}
    assert set(contexts) == {"train", "validation", "test"}
    train_source = json.loads(contexts["train"].source)
    assert train_source["path"] == "data/market/train.csv"
    assert train_source["md5"] == run.data.tags["dvc.data_md5"]

    # an evaluation records the params its checkpoint was trained with, and that run
    modelyard(a, "evaluate", f"experiment={TASK}", f"ckpt_path={output_dir / 'model.ckpt'}")
    [evaluation] = [r for r in runs(a) if r.data.tags.get("weights_sha256_evaluated")
                    == run.data.tags["weights_sha256"]]
    assert evaluation.data.params["model.lr"] == "0.003"
    assert evaluation.data.tags["source_run"] == run_id

    # data from outside data/market registers a model of its own; the shipped one is untouched
    shipped = store.get_registered_model(NAME).aliases
    shipped_versions = len(store.search_model_versions(f"name='{NAME}'"))
    assert shipped.get("challenger") is not None
    mine = tmp_path / "my_countries"
    mine.mkdir()
    for split in ("train", "val", "test"):
        shutil.copy(a / "data" / "market" / f"{split}.csv", mine / f"{split}.csv")
    user = modelyard(a, "train", f"experiment={TASK}", "debug=fast", f"data.path={mine}")
    assert f"registered: models:/{NAME}-my_countries/1" in user.stdout
    own = store.get_model_version_by_alias(f"{NAME}-my_countries", "challenger")
    assert str(own.version) == "1" and own.tags["data.path"] == str(mine.resolve())
    assert store.get_registered_model(NAME).aliases == shipped
    assert len(store.search_model_versions(f"name='{NAME}'")) == shipped_versions

    # forced under the shipped name, a model taking other inputs never becomes its champion
    loose = ["registry.policy.floor=1e9", "registry.policy.baseline=null"]
    assert modelyard(a, "models", "promote", NAME, *loose, check=False).returncode in (0, 3)
    champion = store.get_model_version_by_alias(NAME, "champion").version
    fewer = modelyard(a, "train", f"experiment={TASK}", "debug=fast", f"data.path={mine}",
                      "data.features=[fertility,life_expectancy,log_population]",
                      f"registry.name={NAME}")
    assert fewer.returncode == 0, fewer.stderr[-2000:]
    refused = modelyard(a, "models", "promote", NAME, *loose, check=False)
    assert refused.returncode == 2, refused.stdout[-2000:] + refused.stderr[-2000:]
    assert "input schemas differ" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert store.get_model_version_by_alias(NAME, "champion").version == champion
