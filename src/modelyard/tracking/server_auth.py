"""Authentication for `modelyard server`: who may serve a network without it, where the admin's
password comes from, and MLflow's basic-auth configuration.

The admin password is read from $MLFLOW_AUTH_ADMIN_PASSWORD or from a file only its owner can
read, creates the admin user before the server starts (as `mlflow server --app-name basic-auth`
does itself) and is not handed to the server process. The generated basic_auth.ini holds no
secret: a PostgreSQL password for the auth tables reaches the server as PGPASSWORD.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import secrets
import socket
import stat
from pathlib import Path

from omegaconf import DictConfig

from modelyard.errors import ConfigError, StoreError, one_line

APP_NAME = "modelyard-auth"  # pyproject's mlflow.app entry point: modelyard.tracking.auth_app
PASSWORD_ENV = "MLFLOW_AUTH_ADMIN_PASSWORD"


def is_loopback(host: str) -> bool:
    """Every address `host` names is a loopback address (127.0.0.0/8, ::1)."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (socket.gaierror, UnicodeError):
        return False
    return bool(addresses) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback
                                   for a in addresses)


def check_exposure(host: str, port: int, auth_enabled: bool, insecure: bool) -> None:
    """Refuse to open the registry to a network without authentication, unless told to."""
    if auth_enabled or insecure or is_loopback(host):
        return
    raise ConfigError(
        f"host={host} without authentication would let anyone who reaches port {port} create "
        f"runs, delete versions and move 'champion': keep auth.enabled=true, or say "
        f"insecure=true"
    )


def refuse_passwords_in(overrides: list[str]) -> None:
    """A password given as an override is refused without being repeated: it is already in
    the shell's history and the process list, and must not reach a log as well."""
    for override in overrides:
        key = override.partition("=")[0].lstrip("+~")
        if key.lower().endswith(("password", "secret")):
            raise ConfigError(f"{key}: a password is never taken from the command line; use "
                              f"{PASSWORD_ENV} or auth.admin_password_file (a file of mode 600)")


def read_secret_file(path: Path, what: str) -> str:
    """A one-line secret from a regular file that belongs to this user and that no one else
    may read (mode 0600 or 0400)."""
    try:
        info = path.stat()
    except OSError as err:
        raise ConfigError(f"{what} {path}: {one_line(err)}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"{what} {path} is not a regular file")
    if info.st_uid != os.geteuid():
        raise ConfigError(f"{what} {path} belongs to another user")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        raise ConfigError(f"{what} {path} can be read by others (mode {mode:04o}): "
                          f"chmod 600 {path}")
    secret = path.read_text().rstrip("\r\n")
    if not secret or "\n" in secret:
        raise ConfigError(f"{what} {path} must hold the password on one line")
    return secret


def admin_password(password_file: str | None) -> str | None:
    """The admin's password: the file when one is configured, else the environment."""
    if password_file:
        return read_secret_file(Path(password_file), "auth.admin_password_file")
    return os.environ.get(PASSWORD_ENV) or None


def auth_database(uri: str) -> tuple[str, dict[str, str]]:
    """The auth database URI without its password, and the environment that carries it."""
    from sqlalchemy.engine import URL, make_url

    url = make_url(uri)
    if url.password is None:
        return uri, {}
    if url.get_backend_name() != "postgresql":
        raise ConfigError(f"auth database {url.render_as_string()}: a password can only be "
                          f"passed to PostgreSQL (as PGPASSWORD); use sqlite or postgresql")
    bare = URL.create(url.drivername, url.username, None, url.host, url.port, url.database,
                      url.query)
    return bare.render_as_string(hide_password=False), {"PGPASSWORD": str(url.password)}


def write_auth_config(directory: Path, settings: dict[str, str]) -> Path:
    """basic_auth.ini for these settings, named by its content (two servers started from one
    checkout never share a file), in a directory only this user can enter."""
    text = "[mlflow]\n" + "".join(f"{key} = {value.replace('%', '%%')}\n"
                                  for key, value in settings.items())
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / f"basic_auth-{hashlib.sha256(text.encode()).hexdigest()[:12]}.ini"
    if not path.is_file() or path.read_text() != text:
        partial = path.with_suffix(".partial")
        partial.write_text(text)
        os.replace(partial, path)
    return path


def auth_environment(cfg: DictConfig) -> dict[str, str]:
    """What the server's environment needs for basic auth; creates the admin user first."""
    auth = cfg.auth
    password = admin_password(auth.get("admin_password_file"))  # refused before any write
    database_uri = str(auth.database_uri or cfg.backend_store_uri)
    if auth.database_uri:
        from modelyard.tracking.store import check_database

        check_database(database_uri, "auth database")
    ini_uri, secret_env = auth_database(database_uri)
    username = str(auth.admin_username)
    config = write_auth_config(Path(auth.config_dir), {
        "default_permission": str(auth.default_permission),
        "database_uri": ini_uri,
        "admin_username": username,
        "auth_cache_ttl_seconds": str(int(auth.cache_seconds)),
    })
    env = {
        "MLFLOW_AUTH_CONFIG_PATH": str(config),
        "MODELYARD_MANAGE_ONLY_ALIASES": ",".join(auth.manage_only_aliases),
        # CSRF protection of MLflow's sign-up form; one key for every worker of this server
        "MLFLOW_FLASK_SERVER_SECRET_KEY": os.environ.get("MLFLOW_FLASK_SERVER_SECRET_KEY")
        or secrets.token_hex(32),
        # MLflow's GenAI job runner authenticates to the server with a token only the app
        # named "basic-auth" is given; modelyard runs no such jobs, so none are started
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        **secret_env,
    }
    create_admin(env, username, password)
    return env


def create_admin(env: dict[str, str], username: str, password: str | None) -> None:
    """Create the auth tables and the admin user with MLflow's own bootstrap, so a missing or
    too weak password is one line here, not a crashing server."""
    os.environ.update(env)  # read by mlflow.server.auth when it is imported
    from mlflow.exceptions import MlflowException
    from mlflow.server import auth as basic_auth

    try:
        basic_auth.store.init_db(basic_auth.auth_config.database_uri)
        if not basic_auth.store.has_user(username) and not password:
            raise ConfigError(
                f"authentication: the admin user {username!r} does not exist yet; give its "
                f"password in {PASSWORD_ENV} or in auth.admin_password_file (a file of mode 600)"
            )
        basic_auth.create_admin_user(username, password)
    except MlflowException as err:
        raise ConfigError(f"authentication: {one_line(err.message)}") from None
    except ConfigError:
        raise
    except Exception as err:  # the auth database itself (SQLAlchemy, driver)
        from modelyard.tracking.store import without_credentials

        raise StoreError(f"authentication database: {without_credentials(one_line(err))}") \
            from None
