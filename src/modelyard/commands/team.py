"""`modelyard server` and `modelyard users add`: the team's MLflow server and who may use it."""

from __future__ import annotations

import argparse
import sys

from modelyard.commands.models import tracking_client
from modelyard.errors import ConfigError


def server(options: argparse.Namespace) -> None:
    from modelyard.config import check_overrides
    from modelyard.tracking.server import serve
    from modelyard.tracking.server_auth import refuse_passwords_in

    refuse_passwords_in(options.overrides)
    serve(check_overrides("server", options.overrides))


def new_password() -> str:
    """A new user's password: typed twice at a terminal, else the first line of stdin (never
    an argument: it would stay in shell history and the process list)."""
    import getpass

    if sys.stdin.isatty():
        password = getpass.getpass("new user's password: ")
        if getpass.getpass("again: ") != password:
            raise ConfigError("the two passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise ConfigError("no password (type it, or pipe it in on stdin)")
    return password


def users_add(options: argparse.Namespace) -> None:
    """A user of the team server in a role; the caller's credentials must be an admin's."""
    client = tracking_client()
    from modelyard import tasks
    from modelyard.tracking.users import add_user

    password = new_password()
    # the team's registered models: what every task declares
    created = add_user(client.tracking_uri, options.name, password, options.role,
                       sorted(tasks.registered_models().values()))
    if created:
        print(f"created registered models {', '.join(created)} (owned by the admin)")
    print(f"added user {options.name} ({options.role})")
