"""Tests drive modelyard the way a user does: the `modelyard` command, Hydra configs and
MLflow queries. Real data is prepared once per session into a temporary directory."""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
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


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("data")
    result = run_cli("prepare", "all", f"out_dir={out}")
    assert result.returncode == 0, result.stderr
    return out


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


@pytest.fixture()
def team_server(postgres_url: str, tmp_path: Path) -> str:
    """`modelyard server` on loopback: PostgreSQL backend store, local artifact root."""
    port = free_port()
    env = cli_env({"MLFLOW_BACKEND_STORE_URI": postgres_url})
    command = [MODELYARD, "server", f"port={port}",
               f"artifacts_destination={tmp_path}/server-artifacts"]
    with background(command, env, f"http://127.0.0.1:{port}/health"):
        yield f"http://127.0.0.1:{port}"
