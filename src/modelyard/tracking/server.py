"""`modelyard server`: `mlflow server` on a SQL backend store with a proxied artifact root.

The backend URI, which may carry a password, reaches MLflow through its environment
variable rather than argv, and is only ever printed without credentials.
"""

from __future__ import annotations

import os
import sys

from omegaconf import DictConfig

from modelyard.errors import StoreError, one_line
from modelyard.tracking.store import without_credentials

CONNECT_TIMEOUT_S = 5


def check_backend_store(uri: str) -> None:
    """Connect once, so a wrong password or a stopped database is one line, not a trace."""
    if not uri.startswith(("postgresql", "mysql")):
        return
    import sqlalchemy

    engine = sqlalchemy.create_engine(uri, connect_args={"connect_timeout": CONNECT_TIMEOUT_S})
    try:
        with engine.connect():
            pass
    except sqlalchemy.exc.SQLAlchemyError as err:
        raise StoreError(
            f"backend store {without_credentials(uri)} is unusable: {one_line(err)}"
        ) from None
    finally:
        engine.dispose()


def server_command(cfg: DictConfig) -> list[str]:
    return [
        sys.executable, "-m", "mlflow", "server",
        "--host", str(cfg.host), "--port", str(cfg.port), "--workers", str(cfg.workers),
        "--artifacts-destination", str(cfg.artifacts_destination),
    ]


def serve(cfg: DictConfig) -> None:
    """Replace this process with the MLflow server (so signals reach it directly)."""
    check_backend_store(cfg.backend_store_uri)
    print(
        f"MLflow server on http://{cfg.host}:{cfg.port}  "
        f"backend: {without_credentials(cfg.backend_store_uri)}  "
        f"artifacts: {cfg.artifacts_destination}",
        flush=True,
    )
    env = {**os.environ, "MLFLOW_BACKEND_STORE_URI": str(cfg.backend_store_uri)}
    command = server_command(cfg)
    os.execve(command[0], command, env)
