"""`modelyard server`: `mlflow server` on a SQL backend store with a proxied artifact root,
behind MLflow's basic authentication (tracking/server_auth.py, tracking/auth_app.py).

The backend URI, which may carry a password, reaches MLflow through its environment
variable rather than argv, and is only ever printed without credentials.
"""

from __future__ import annotations

import os
import sys

from omegaconf import DictConfig

from modelyard.tracking.server_auth import APP_NAME, auth_environment, check_exposure
from modelyard.tracking.store import check_database, without_credentials


def server_command(cfg: DictConfig) -> list[str]:
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--host", str(cfg.host), "--port", str(cfg.port), "--workers", str(cfg.workers),
        "--artifacts-destination", str(cfg.artifacts_destination),
    ]
    return [*command, "--app-name", APP_NAME] if cfg.auth.enabled else command


def serve(cfg: DictConfig) -> None:
    """Replace this process with the MLflow server (so signals reach it directly)."""
    check_exposure(str(cfg.host), int(cfg.port), bool(cfg.auth.enabled), bool(cfg.insecure))
    check_database(str(cfg.backend_store_uri), "backend store")
    env = {**os.environ, "MLFLOW_BACKEND_STORE_URI": str(cfg.backend_store_uri)}
    env.pop("MLFLOW_AUTH_ADMIN_PASSWORD", None)  # used once, below, never by the server
    if cfg.auth.enabled:
        env.update(auth_environment(cfg))
        access = f"basic auth (admin: {cfg.auth.admin_username})"
    else:
        access = "NO AUTHENTICATION"
    print(
        f"MLflow server on http://{cfg.host}:{cfg.port}  "
        f"backend: {without_credentials(cfg.backend_store_uri)}  "
        f"artifacts: {cfg.artifacts_destination}  access: {access}",
        flush=True,
    )
    command = server_command(cfg)
    os.execve(command[0], command, env)
