"""What `modelyard server` checks before it starts, in-process: loopback or authentication
(or insecure=true), an admin password file only its owner reads, no password on the command
line or in the generated auth config. The server itself is tested in test_team.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard.errors import ConfigError
from modelyard.tracking import server_auth


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("localhost", True), ("::1", True), ("127.0.0.2", True),
    ("0.0.0.0", False), ("::", False), ("192.0.2.10", False), ("no-such-host.invalid", False),
])
def test_only_loopback_addresses_count_as_loopback(host: str, loopback: bool) -> None:
    assert server_auth.is_loopback(host) is loopback


def test_exposure_without_authentication_needs_insecure_in_so_many_words() -> None:
    server_auth.check_exposure("127.0.0.1", 5000, auth_enabled=False, insecure=False)
    server_auth.check_exposure("0.0.0.0", 5000, auth_enabled=True, insecure=False)
    server_auth.check_exposure("0.0.0.0", 5000, auth_enabled=False, insecure=True)
    with pytest.raises(ConfigError, match="host=0.0.0.0 without authentication"):
        server_auth.check_exposure("0.0.0.0", 5000, auth_enabled=False, insecure=False)


def test_a_password_on_the_command_line_is_refused_without_repeating_it() -> None:
    with pytest.raises(ConfigError, match="never taken from the command line") as caught:
        server_auth.refuse_passwords_in(["port=5001", "+auth.admin_password=hunter2-hunter2"])
    assert "hunter2" not in str(caught.value)
    server_auth.refuse_passwords_in(["auth.admin_password_file=/run/secrets/admin"])


def test_the_admin_password_file_must_be_the_owner_s_alone(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("a-good-password\n")
    for mode in (0o600, 0o400):
        secret.chmod(mode)
        assert server_auth.read_secret_file(secret, "file") == "a-good-password"
    for mode in (0o640, 0o604, 0o644):
        secret.chmod(mode)
        with pytest.raises(ConfigError, match=f"mode {mode:04o}"):
            server_auth.read_secret_file(secret, "file")
    secret.chmod(0o600)
    secret.write_text("two\nlines\n")
    with pytest.raises(ConfigError, match="one line"):
        server_auth.read_secret_file(secret, "file")
    with pytest.raises(ConfigError, match="No such file"):
        server_auth.read_secret_file(tmp_path / "missing", "file")


def test_the_auth_config_holds_no_password(tmp_path: Path) -> None:
    uri, env = server_auth.auth_database("postgresql://alice:pa%25ss@db:5432/mlflow")
    assert uri == "postgresql://alice@db:5432/mlflow" and env == {"PGPASSWORD": "pa%ss"}
    assert server_auth.auth_database("sqlite:////srv/mlflow.db") == ("sqlite:////srv/mlflow.db",
                                                                     {})
    with pytest.raises(ConfigError, match="PostgreSQL"):
        server_auth.auth_database("mysql://bob:secret@db/mlflow")
    settings = {"default_permission": "READ", "database_uri": uri}
    path = server_auth.write_auth_config(tmp_path / "auth", settings)
    assert server_auth.write_auth_config(tmp_path / "auth", settings) == path  # by content
    assert "pa%ss" not in path.read_text() and "alice@db" in path.read_text()
    assert (tmp_path / "auth").stat().st_mode & 0o077 == 0
