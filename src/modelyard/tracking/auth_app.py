"""The team server's app (`mlflow server --app-name modelyard-auth`): MLflow's own basic-auth
app with one rule added that MLflow's permission levels cannot say by themselves.

Setting any alias of a registered model needs EDIT in MLflow, and researchers need EDIT to
give their versions the `challenger` alias. So without this rule a researcher could move
`champion` with one REST call. Here setting or deleting a protected alias (`champion`) needs
MANAGE on the registered model, as `modelyard models promote` / `rollback` require.

Runs inside the server (imported by uvicorn), configured through the environment that
`modelyard server` sets.
"""

from __future__ import annotations

import os

from flask import Flask, Response, jsonify, request
from mlflow.server import app as mlflow_app
from mlflow.server import auth as basic_auth

PROTECTED_ALIASES_ENV = "MODELYARD_MANAGE_ONLY_ALIASES"  # comma-separated
ALIAS_ROUTE = "/mlflow/registered-models/alias"


def protected_aliases() -> set[str]:
    return {a for a in os.environ.get(PROTECTED_ALIASES_ENV, "champion").split(",") if a}


def _request_value(key: str) -> str | None:
    body = request.get_json(force=True, silent=True) if request.data else None
    return request.args.get(key) or (body or {}).get(key)


def guard_protected_aliases() -> Response | None:
    """Before-request hook, after basic auth's own (which has authenticated the caller)."""
    if request.method not in ("POST", "DELETE") or not request.path.endswith(ALIAS_ROUTE):
        return None
    alias, name = _request_value("alias"), _request_value("name")
    if alias not in protected_aliases() or not name:
        return None
    if basic_auth.sender_is_admin():
        return None
    # the same resolution (user grants, role grants, default permission) MLflow's own
    # validators use for this registered model
    permission = basic_auth._get_registered_model_permission(name)
    if permission.can_manage:
        return None
    user = basic_auth.authenticate_request().username
    response = jsonify({
        "error_code": "PERMISSION_DENIED",
        "message": f"user {user} has {permission.name} permission on registered model {name}; "
                   f"moving its '{alias}' alias needs MANAGE",
    })
    response.status_code = 403
    return response


def create_app(app: Flask = mlflow_app):
    """MLflow's basic-auth app factory, then the alias rule on the same Flask app."""
    served = basic_auth.create_app(app)
    app.before_request(guard_protected_aliases)  # registered after, so it runs after, auth's
    return served
