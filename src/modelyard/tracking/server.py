"""`modelyard server`: `mlflow server` on a SQL backend store with a proxied artifact root.

The backend URI, which may carry a password, reaches MLflow through its environment
variable rather than argv, and is only ever printed without credentials.
"""

from __future__ import annotations

import os
import sys

from omegaconf import DictConfig

from modelyard.tracking.store import check_database, without_credentials


def server_command(cfg: DictConfig) -> list[str]:
    return [
        sys.executable, "-m", "mlflow", "server",
        "--host", str(cfg.host), "--port", str(cfg.port), "--workers", str(cfg.workers),
        "--artifacts-destination", str(cfg.artifacts_destination),
    ]


def serve(cfg: DictConfig) -> None:
    """Replace this process with the MLflow server (so signals reach it directly)."""
    check_database(str(cfg.backend_store_uri), "backend store")
    print(
        f"MLflow server on http://{cfg.host}:{cfg.port}  "
        f"backend: {without_credentials(cfg.backend_store_uri)}  "
        f"artifacts: {cfg.artifacts_destination}",
        flush=True,
    )
    env = {**os.environ, "MLFLOW_BACKEND_STORE_URI": str(cfg.backend_store_uri)}
    command = server_command(cfg)
    os.execve(command[0], command, env)
