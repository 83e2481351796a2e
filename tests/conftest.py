"""Tests drive modelyard the way a user does: the `modelyard` command, Hydra configs, the
package's public functions and MLflow queries. Real data is prepared once per session, in this
process, into a temporary project (a directory with conf/, under git).

Two tiers: the default run is in-process only (pure functions, config composition, short
in-process trainings); everything that starts a subprocess (`modelyard`, dvc, servers,
torchrun, PostgreSQL) or trains at full length is marked `slow` (CI runs `-m slow` too).
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from services import Postgres, background, postgres_bindir

ROOT = Path(__file__).resolve().parents[1]  # the checkout under test
BIN = Path(sys.executable).parent
MODELYARD = str(BIN / "modelyard")


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a `modelyard` subprocess gets: this one, quiet, plus `extra`."""
    return {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", **(extra or {})}


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [MODELYARD, *args], capture_output=True, text=True, env=cli_env(env), timeout=timeout,
        cwd=cwd,
    )


def dvc(*args: str, cwd: Path, env: dict[str, str] | None = None,
        check: bool = True) -> subprocess.CompletedProcess:
    """The venv's `dvc`, with the venv's `modelyard` on PATH for the stages it runs."""
    full_env = cli_env({"DVC_NO_ANALYTICS": "1", "PATH": f"{BIN}:{os.environ['PATH']}",
                        **(env or {})})
    result = subprocess.run([str(BIN / "dvc"), *args], cwd=cwd, env=full_env,
                            capture_output=True, text=True, timeout=600)
    if check:
        assert result.returncode == 0, f"dvc {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", "-c", "user.email=t@example.org", "-c", "user.name=test",
                           *args], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout.strip()


@contextmanager
def working_directory(directory: Path) -> Iterator[None]:
    """modelyard finds its project from the working directory: stand in `directory`."""
    before = Path.cwd()
    os.chdir(directory)
    try:
        yield
    finally:
        os.chdir(before)


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A modelyard project of the session's own: this checkout's conf/ committed to a fresh
    git repository, and the three datasets prepared into its data/ by `prepare` (in-process,
    with conf/prepare.yaml's split and seed, as `modelyard prepare all` does)."""
    from omegaconf import OmegaConf

    from modelyard.config import compose
    from modelyard.data.prepare import PREPARERS, prepare

    root = tmp_path_factory.mktemp("project")
    shutil.copytree(ROOT / "conf", root / "conf")
    git("init", "-q", cwd=root)
    git("add", "conf", cwd=root)
    git("commit", "-qm", "conf", cwd=root)
    with working_directory(root):
        cfg = compose("prepare", [])
    fractions = OmegaConf.to_container(cfg.split, resolve=True)
    for name in PREPARERS:
        prepare(name, root / "data", fractions, int(cfg.seed))
    return root


@pytest.fixture(scope="session")
def data_dir(project: Path) -> Path:
    return project / "data"


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, migrated MLflow SQLite database, made once: creating one costs seconds."""
    path = tmp_path_factory.mktemp("store-template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture()
def store(empty_store: Path, tmp_path: Path) -> str:
    """The URI of an empty SQLite tracking store of the test's own (for in-process jobs)."""
    path = tmp_path / "store" / "mlflow.db"
    path.parent.mkdir()
    shutil.copy(empty_store, path)
    return f"sqlite:///{path}"


def train_overrides(task: str, output_dir: Path, *overrides: str,
                    tracking_uri: str | None = None) -> list[str]:
    """`modelyard train`'s overrides for a seconds-long run (debug=fast) into `output_dir`:
    the MLflow store `tracking_uri`, or no tracking at all (logger=none)."""
    logger = [f"logger.tracking_uri={tracking_uri}"] if tracking_uri else ["logger=none"]
    return [f"experiment={task}", "debug=fast", f"paths.output_root={output_dir.parent}",
            f"paths.output_dir={output_dir}", *logger, *overrides]


@cache
def cached_client(tracking_uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=tracking_uri)


def runs_in(tracking_uri: str) -> list:
    """Every run in a store, of every experiment."""
    client = cached_client(tracking_uri)
    experiments = client.search_experiments()
    return client.search_runs([e.experiment_id for e in experiments]) if experiments else []


@pytest.fixture()
def tracking(tmp_path: Path) -> dict[str, str]:
    """An empty SQLite tracking store of the test's own, passed the way users do: env var."""
    return {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}


@pytest.fixture()
def train(data_dir: Path, tmp_path: Path, tracking: dict[str, str]):
    """`modelyard train` with the session's data, the test's store and its own output root."""

    def _train(
        *overrides: str, env: dict[str, str] | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess:
        return run_cli(
            "train", f"paths.data_dir={data_dir}", f"paths.output_root={tmp_path}/outputs",
            *overrides, env={**tracking, **(env or {})}, timeout=timeout,
        )

    return _train


def client_for(tracking: dict[str, str]) -> MlflowClient:
    return MlflowClient(tracking_uri=tracking["MLFLOW_TRACKING_URI"])


def all_runs(tracking: dict[str, str]) -> list:
    client = client_for(tracking)
    experiments = client.search_experiments()
    if not experiments:
        return []
    return client.search_runs([e.experiment_id for e in experiments])


@pytest.fixture(scope="session")
def postgres() -> Postgres:
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed here (.ci/run installs it: apt-get install "
                    "postgresql)")
    cluster = Postgres(bindir, free_port())
    cluster.start()
    yield cluster
    cluster.stop()


_database_numbers = itertools.count()


@pytest.fixture()
def postgres_url(postgres: Postgres) -> str:
    """A new, empty database of its own; the URL carries a user and password."""
    return postgres.new_database(f"test_{os.getpid()}_{next(_database_numbers)}")


@contextmanager
def modelyard_server(database_url: str, root: Path, *overrides: str,
                     env: dict[str, str] | None = None) -> Iterator[str]:
    """`modelyard server` on loopback until the block ends: PostgreSQL backend store, artifacts
    and the generated auth config under `root`; yields its URL."""
    port = free_port()
    command = [MODELYARD, "server", f"port={port}", f"artifacts_destination={root}/artifacts",
               f"auth.config_dir={root}/auth", *overrides]
    full_env = cli_env({"MLFLOW_BACKEND_STORE_URI": database_url, **(env or {})})
    with background(command, full_env, f"http://127.0.0.1:{port}/health"):
        yield f"http://127.0.0.1:{port}"


@contextmanager
def restored_mlflow_uris() -> Iterator[None]:
    """For code that sets MLflow's process-wide tracking and registry URIs (promotion,
    registration): both are unset afterwards, and the environment variables MLflow copies
    them into, which later `modelyard` subprocesses would inherit, are put back as they were."""
    import mlflow

    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    saved = {name: os.environ.get(name) for name in names}
    try:
        yield
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture()
def fluent_mlflow() -> Iterator[None]:
    with restored_mlflow_uris():
        yield
