"""What a run records and where: credentials never leave a URI, an unusable store is refused
before any run exists, and the git state a run records is that of the code and config."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from modelyard.errors import StoreError
from modelyard.tracking import lineage, store
from modelyard.tracking.run import flat_params

from conftest import free_port, git


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://alice:s3cret@db.example:5432/mlflow",
         "postgresql://db.example:5432/mlflow"),
        ("http://token@mlflow.example/", "http://mlflow.example/"),
        ("from mysql://u:p@h/db to https://v:q@k:443/x", "from mysql://h/db to https://k:443/x"),
        ("sqlite:////home/alice/mlflow.db", "sqlite:////home/alice/mlflow.db"),
        ("mail t@example.org about http://h:5000", "mail t@example.org about http://h:5000"),
    ],
)
def test_without_credentials_drops_user_and_password_of_every_uri(text: str,
                                                                  expected: str) -> None:
    assert store.without_credentials(text) == expected


def test_flat_params_are_dotted_resolved_and_without_credentials() -> None:
    cfg = OmegaConf.create({
        "task": "t", "model": {"lr": 0.1, "sizes": [1, 2]}, "data": {"path": "${task}/d"},
        "logger": {"tracking_uri": "http://alice:s3cret@mlflow.example:5000"},
        "hydra": {"run": {"dir": "x"}},
    })
    assert flat_params(cfg) == {
        "task": "t", "model.lr": 0.1, "model.sizes": [1, 2], "data.path": "t/d",
        "logger.tracking_uri": "http://mlflow.example:5000",
    }


def test_default_store_is_the_environment_s_else_the_project_s(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert store.default_uri(tmp_path) == f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    assert store.default_uri(tmp_path) == "http://mlflow.example:5000"


def test_check_accepts_a_usable_sqlite_location_and_refuses_a_missing_directory(
    tmp_path: Path
) -> None:
    store.check(f"sqlite:///{tmp_path}/mlflow.db")  # created on first use
    with pytest.raises(StoreError) as caught:
        store.check(f"sqlite:///{tmp_path}/nowhere/mlflow.db")
    assert "no such directory" in str(caught.value) and "nowhere" in str(caught.value)


def test_check_refuses_a_server_that_does_not_answer_without_its_credentials() -> None:
    uri = f"http://alice:s3cret@127.0.0.1:{free_port()}"
    with pytest.raises(StoreError) as caught:
        store.check(uri)
    message = str(caught.value)
    assert "unreachable" in message and "127.0.0.1" in message
    assert "s3cret" not in message and "alice" not in message
    assert "\n" not in message


def test_check_refuses_a_database_that_does_not_answer_without_its_credentials() -> None:
    uri = f"postgresql://alice:s3cret@127.0.0.1:{free_port()}/mlflow"
    with pytest.raises(StoreError) as caught:
        store.check(uri)
    message = str(caught.value)
    assert message.startswith(f"MLflow tracking store {store.without_credentials(uri)} ")
    assert "unusable" in message
    assert "s3cret" not in message and "alice" not in message
    assert "\n" not in message


def test_sqlite_artifacts_go_beside_the_database_and_a_server_decides_its_own(
    tmp_path: Path
) -> None:
    root = store.local_artifact_root(f"sqlite:///{tmp_path}/mlflow.db", "mnist_cnn")
    assert root == (tmp_path / "mlartifacts" / "mnist_cnn").as_uri()
    assert store.local_artifact_root("http://mlflow.example:5000", "mnist_cnn") is None


# -- lineage: the git state of a project ---------------------------------------------------


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    """A tiny project under git: code, config, a README and pipeline outputs."""
    root = tmp_path / "repo"
    for name, text in {"src/pkg/code.py": "x = 1\n", "conf/train.yaml": "seed: 1\n",
                       "README.md": "hello\n", "pipeline/.gitkeep": ""}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git("init", "-q", cwd=root)
    git("add", "-A", cwd=root)
    git("commit", "-qm", "init", cwd=root)
    return root


def test_git_state_of_a_clean_checkout_is_its_commit(repo: Path) -> None:
    assert lineage.git_state(repo) == {"git.sha": git("rev-parse", "HEAD", cwd=repo),
                                       "git.dirty": "false"}


@pytest.mark.parametrize(
    ("change", "dirty"),
    [
        ("src/pkg/code.py", "true"),        # an edited source file
        ("src/pkg/new.py", "true"),         # an untracked one
        ("conf/model.yaml", "true"),        # config determines the model too
        ("README.md", "false"),             # not a source of any model
        ("pipeline/model.ckpt", "false"),   # outputs DVC rewrites while a pipeline runs
    ],
)
def test_git_state_is_dirty_only_for_changed_code_or_config(repo: Path, change: str,
                                                            dirty: str) -> None:
    head = git("rev-parse", "HEAD", cwd=repo)
    (repo / change).write_text("changed\n")
    assert lineage.git_state(repo) == {"git.sha": head, "git.dirty": dirty}


def test_git_state_outside_a_repository_is_unknown(tmp_path: Path) -> None:
    assert lineage.git_state(tmp_path) == {"git.sha": "unknown", "git.dirty": "unknown"}


def test_git_state_before_the_first_commit_is_unknown(repo: Path) -> None:
    shutil.rmtree(repo / ".git")
    git("init", "-q", cwd=repo)
    assert lineage.git_state(repo)["git.sha"] == "unknown"


def test_data_inside_the_project_is_named_relative_to_it(tmp_path: Path) -> None:
    project = tmp_path / "project"
    assert lineage.relative_to_project(project / "data" / "market", project) == "data/market"
    assert lineage.relative_to_project(Path("data/market"), project) == "data/market"
    outside = tmp_path / "mine"
    assert lineage.relative_to_project(outside, project) == str(outside)


def test_a_later_command_ends_the_runs_of_killed_processes_and_only_those(store: str) -> None:
    """A run whose process was SIGKILLed ends KILLED with a tag saying why; a run whose process
    lives, a run of another host and a pid reused by a newer process are told apart."""
    import os
    import signal
    import subprocess

    from mlflow.tracking import MlflowClient

    from modelyard.tracking import owner

    client = MlflowClient(store)
    experiment = client.create_experiment("t")
    victim = subprocess.Popen(["sleep", "300"])
    mine = owner.owner_tags()

    def run_of(**tags: str) -> str:
        return client.create_run(experiment, tags={**mine, **tags}).info.run_id

    killed = run_of(**{owner.PID: str(victim.pid),
                       owner.STARTED: owner.owner_tags_of(victim.pid)[owner.STARTED]})
    alive = run_of()
    elsewhere = run_of(**{owner.HOST: "another-host", owner.PID: str(victim.pid)})
    reused = run_of(**{owner.STARTED: f"{float(mine[owner.STARTED]) - 3600:.2f}"})  # my pid, older
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()

    assert sorted(owner.end_orphaned_runs(client)) == sorted([killed, reused])
    status = {run_id: client.get_run(run_id).info.status for run_id in (killed, alive, elsewhere)}
    assert status == {killed: "KILLED", alive: "RUNNING", elsewhere: "RUNNING"}
    assert f"process {victim.pid} " in client.get_run(killed).data.tags[owner.ENDED]
    assert owner.end_orphaned_runs(client) == []  # nothing twice
