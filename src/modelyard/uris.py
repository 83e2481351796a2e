"""Tracking URIs: keep credentials out of anything printed or recorded, and fail fast on a
server that does not answer. Light on imports: the CLI checks before torch loads."""

from __future__ import annotations

import fcntl
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from modelyard.errors import ModelyardError

SERVER_TIMEOUT_S = 5
CREDENTIALS = re.compile(r"(?<=://)[^/\s@]+@")  # user:password@ right after a URI scheme


def check_reachable(tracking_uri: str) -> None:
    """Fail in seconds, not after minutes of client retries, when a server does not answer."""
    if not tracking_uri.startswith(("http://", "https://")):
        return
    import requests

    try:
        requests.get(f"{tracking_uri.rstrip('/')}/health", timeout=SERVER_TIMEOUT_S)
    except requests.RequestException as err:
        raise ModelyardError(
            f"MLflow tracking server {without_credentials(tracking_uri)} is unreachable "
            f"({type(err).__name__}); start it or set MLFLOW_TRACKING_URI"
        ) from None


def database_error(err: BaseException) -> str:
    """A database driver's error (SQLAlchemy wraps it in `.orig`) as one short line."""
    return " ".join(str(getattr(err, "orig", err)).split())[:300]


def without_credentials(text: str) -> str:
    """`text` with the user:password@ of every URI in it removed, safe to print or record."""
    return CREDENTIALS.sub("", text)


@contextmanager
def store_init_lock(uri: str) -> Iterator[None]:
    """Serialise opening a SQLite store (MLflow's or Optuna's) across processes.

    Two processes creating the same fresh database at once (a joblib multirun, two sweep
    workers) collide in its schema migration; the second to take the lock finds it migrated.
    """
    if not uri.startswith("sqlite:///"):
        yield
        return
    lock_path = Path(uri.removeprefix("sqlite:///") + ".init-lock")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock = lock_path.open("w")
    except OSError:  # an unusable location: let the store itself say what is wrong
        yield
        return
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
