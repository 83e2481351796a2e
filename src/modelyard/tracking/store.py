"""Which tracking store a job uses, and checks that fail in seconds with one line: credentials
kept out of anything printed or recorded, a server that does not answer, a SQLite file whose
directory does not exist. Light on imports: the CLI checks before torch loads."""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

from modelyard.errors import StoreError, one_line

SERVER_TIMEOUT_S = 5
CREDENTIALS = re.compile(r"(?<=://)[^/\s@]+@")  # user:password@ right after a URI scheme
SQLITE = "sqlite:///"


def default_uri(home: Path) -> str:
    """$MLFLOW_TRACKING_URI, else the project's own SQLite store (conf/logger/mlflow.yaml
    says the same for training jobs)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"{SQLITE}{home}/mlflow.db"


# MLflow's HTTP client retries a dead server for minutes by default (7 retries, backoff
# factor 2, 120 s timeouts); these bound it to well under a minute. The user's own win.
HTTP_CLIENT_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
                   "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                   "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


def bound_client_retries() -> None:
    for key, value in HTTP_CLIENT_ENV.items():
        os.environ.setdefault(key, value)


def refuse_pickled_models() -> None:
    """MLflow still unpickles a pyfunc saved as a Python object (its default); modelyard's
    models are code plus a state dict, so anything pickled is refused (the user's own setting
    wins, e.g. to read a version logged before models were logged as code)."""
    os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")


def check_database(uri: str, what: str = "MLflow tracking store") -> None:
    """Connect once, so a wrong password or a stopped database is one line, not minutes of
    retries and a trace."""
    import sqlalchemy

    # a server's connect timeout; SQLite's driver takes no such argument (a file opens at once)
    timeout = {} if uri.startswith("sqlite") else {"connect_timeout": SERVER_TIMEOUT_S}
    engine = sqlalchemy.create_engine(uri, connect_args=timeout)
    try:
        with engine.connect():
            pass
    except sqlalchemy.exc.SQLAlchemyError as err:
        raise StoreError(f"{what} {without_credentials(uri)} is unusable: {one_line(err)}") \
            from None
    finally:
        engine.dispose()


def check(tracking_uri: str) -> None:
    """Fail fast, before any run exists, on a store that cannot work."""
    if tracking_uri.startswith(SQLITE):
        database = Path(tracking_uri.removeprefix(SQLITE))
        if not database.parent.is_dir():
            raise StoreError(f"MLflow tracking store {tracking_uri}: no such directory "
                             f"{database.parent}")
        if database.exists() and not database.is_file():
            raise StoreError(f"MLflow tracking store {tracking_uri}: {database} is not a file")
        return
    if tracking_uri.startswith(("postgresql", "mysql")):
        check_database(tracking_uri)
        return
    if not tracking_uri.startswith(("http://", "https://")):
        return
    import requests

    try:
        requests.get(f"{tracking_uri.rstrip('/')}/health", timeout=SERVER_TIMEOUT_S)
    except requests.RequestException as err:
        raise StoreError(
            f"MLflow tracking server {without_credentials(tracking_uri)} is unreachable "
            f"({type(err).__name__}); start it or set MLFLOW_TRACKING_URI"
        ) from None
    check_credentials(tracking_uri)


def check_credentials(tracking_uri: str) -> None:
    """One request with the caller's credentials: a server with authentication answers a
    missing or wrong password with 401 at once (MLflow's client does not retry it)."""
    import requests
    from mlflow.utils.credentials import read_mlflow_creds

    creds = read_mlflow_creds()
    auth = (creds.username, creds.password) if creds.username else None  # else the URI's own
    try:
        response = requests.get(f"{tracking_uri.rstrip('/')}/api/2.0/mlflow/experiments/search",
                                params={"max_results": 1}, auth=auth, timeout=SERVER_TIMEOUT_S)
    except requests.RequestException:
        return  # it answered /health: let the job's own first call say what is wrong
    if response.status_code == 401:
        from modelyard.tracking.users import caller_name, refusal

        raise StoreError(refusal(tracking_uri, caller_name(tracking_uri)))


def local_artifact_root(tracking_uri: str, experiment: str) -> str | None:
    """Artifacts of a SQLite store go beside the database; a server decides for itself."""
    if urlparse(tracking_uri).scheme != "sqlite":
        return None
    db_path = Path(tracking_uri.removeprefix(SQLITE)).resolve()
    return (db_path.parent / "mlartifacts" / experiment).as_uri()


def without_credentials(text: str) -> str:
    """`text` with the user:password@ of every URI in it removed, safe to print or record."""
    return CREDENTIALS.sub("", text)


@contextmanager
def init_lock(uri: str) -> Iterator[None]:
    """Serialise opening a SQLite store (MLflow's or Optuna's) across processes.

    Two processes creating the same fresh database at once (a joblib multirun, two sweep
    workers) collide in its schema migration; the second to take the lock finds it migrated.
    """
    if not uri.startswith(SQLITE):
        yield
        return
    lock_path = Path(uri.removeprefix(SQLITE) + ".init-lock")
    try:
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


def client(tracking_uri: str):
    """An MlflowClient bound to this store (never MLflow's process-wide default)."""
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
