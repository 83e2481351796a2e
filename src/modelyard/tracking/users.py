"""Users and permissions on a team server with MLflow's basic authentication: who the caller
is, whether they may move a registered model's champion, and adding a user in a role.

Through MLflow's own REST calls for its auth app (the routes of mlflow.server.auth.routes):
its Python client imports the whole server app, seconds a command would spend before it
could refuse in one line.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelyard.errors import ModelyardError, StoreError
from modelyard.tracking.store import without_credentials

CURRENT_USER = "/api/2.0/mlflow/users/current"
CREATE_USER = "/api/2.0/mlflow/users/create"
DELETE_USER = "/api/2.0/mlflow/users/delete"
GET_PERMISSION = "/api/3.0/mlflow/users/permissions/get"
GRANT_PERMISSION = "/api/3.0/mlflow/users/permissions/grant"

# What each role may do on every experiment and registered model ("*": present and future).
# A user also holds MANAGE on whatever they create themselves (MLflow's rule), which is why
# `add_user` has the team's registered models created by the admin first.
ROLES = {
    # log runs in every experiment, register versions, set `challenger`
    "researcher": {"experiment": "EDIT", "registered_model": "EDIT"},
    # and move `champion`, roll back, break a dead promotion lock
    "promoter": {"experiment": "EDIT", "registered_model": "MANAGE"},
}


@dataclass(frozen=True)
class Caller:
    username: str
    is_admin: bool


def _call(tracking_uri: str, endpoint: str, method: str = "GET", **kwargs):
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    return http_request(get_default_host_creds(tracking_uri), endpoint, method, **kwargs)


def refusal(tracking_uri: str, username: str | None) -> str:
    """The one line for a 401: no credentials, or ones the server does not accept."""
    why = (f"wrong password for user {username!r}, or no such user" if username else
           "no credentials: set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD")
    return (f"MLflow tracking server {without_credentials(tracking_uri)} refused the request "
            f"(HTTP 401 Unauthorized): {why}")


def caller_name(tracking_uri: str) -> str | None:
    from urllib.parse import unquote, urlparse

    from mlflow.utils.credentials import read_mlflow_creds

    name = read_mlflow_creds().username or urlparse(tracking_uri).username
    return unquote(name) if name else None


def current_user(tracking_uri: str) -> Caller | None:
    """The authenticated caller; None when the store has no authentication."""
    if not tracking_uri.startswith(("http://", "https://")):
        return None
    response = _call(tracking_uri, CURRENT_USER)
    if response.status_code == 404:  # a server without the auth app
        return None
    if response.status_code == 401:
        raise StoreError(refusal(tracking_uri, caller_name(tracking_uri)))
    if response.status_code != 200:
        raise StoreError(f"MLflow tracking server {without_credentials(tracking_uri)}: "
                         f"{CURRENT_USER} answered HTTP {response.status_code}")
    user = response.json()["user"]
    return Caller(user["username"], bool(user["is_admin"]))


def permission_on_model(tracking_uri: str, username: str, name: str) -> str:
    """The user's effective permission on a registered model, as the server resolves it."""
    response = _call(tracking_uri, GET_PERMISSION, params={
        "username": username, "resource_type": "registered_model", "resource_id": name})
    if response.status_code != 200:
        raise StoreError(f"could not read the permission of {username} on registered model "
                         f"{name} (HTTP {response.status_code})")
    return str(response.json()["permission"])


def require_manage(tracking_uri: str, name: str, action: str) -> None:
    """Refuse, before anything is written, a caller without MANAGE on the registered model.

    The server refuses such a champion move itself (tracking/auth_app.py); asking first means
    a refused promotion takes no lock, scores nothing and tags no version.
    """
    caller = current_user(tracking_uri)
    if caller is None or caller.is_admin:
        return
    permission = permission_on_model(tracking_uri, caller.username, name)
    if permission != "MANAGE":
        raise ModelyardError(
            f"{caller.username} may not {action} {name}: that needs MANAGE permission on the "
            f"registered model, and {caller.username} has {permission}"
        )


def add_user(tracking_uri: str, username: str, password: str, role: str,
             team_models: list[str]) -> list[str]:
    """Create the user with the role's grants (the caller must be an admin); return the team
    models this call created. A grant that fails removes the user again."""
    from mlflow.exceptions import MlflowException
    from mlflow.utils.rest_utils import verify_rest_response

    if role not in ROLES:
        raise ModelyardError(f"unknown role {role!r}: {' or '.join(ROLES)}")
    caller = current_user(tracking_uri)
    if caller is None:
        raise ModelyardError(f"{without_credentials(tracking_uri)} has no authentication: "
                             f"start it with `modelyard server` (auth.enabled=true)")
    if not caller.is_admin:
        raise ModelyardError(f"{caller.username} is not an admin: only an admin adds users "
                             f"(MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD of one)")
    created = _create_team_models(tracking_uri, team_models)
    try:
        verify_rest_response(_call(tracking_uri, CREATE_USER, "POST", json={
            "username": username, "password": password}), CREATE_USER)
    except MlflowException as err:
        raise ModelyardError(f"user {username}: {err.message}") from None
    try:
        for resource_type, permission in ROLES[role].items():
            verify_rest_response(_call(tracking_uri, GRANT_PERMISSION, "POST", json={
                "username": username, "resource_type": resource_type, "resource_id": "*",
                "permission": permission}), GRANT_PERMISSION)
    except MlflowException as err:
        _call(tracking_uri, DELETE_USER, "DELETE", json={"username": username})
        raise ModelyardError(f"user {username}: granting the {role} role failed, user removed "
                             f"again: {err.message}") from None
    return created


def _create_team_models(tracking_uri: str, names: list[str]) -> list[str]:
    """The team's registered models, created by the admin when missing: whoever creates one
    first holds MANAGE on it, which must not be the first researcher who registers."""
    from mlflow.exceptions import MlflowException

    from modelyard.tracking.store import client

    registry, created = client(tracking_uri), []
    for name in names:
        try:
            registry.create_registered_model(name)
            created.append(name)
        except MlflowException as err:
            if err.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
    return created
