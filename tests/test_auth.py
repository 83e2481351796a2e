"""Team mode with authentication: `modelyard server` runs MLflow's basic-auth app on a real
PostgreSQL; an admin adds a researcher and a promoter; researchers train, register and set
`challenger`, only a user with MANAGE on the model moves `champion` or rolls it back, a refusal
is one line that moves nothing; no credentials or wrong ones are refused at once; a version
whose weights were replaced is not loaded. One server for the module."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from modelyard.errors import ConfigError
from modelyard.tracking import server_auth

from conftest import MODELYARD, cli_env, free_port, modelyard_server, run_cli
from services import Postgres

NAME = "market-regressor"
LOOSE_FLOOR = "registry.policy.market_regressor.floor=1e9"  # debug-sized models
USERS = {"admin": "admin-pw-31415926", "rita": "researcher-pw-2718", "pete": "promoter-pw-1618"}
REFUSED = 2  # modelyard's exit code for a user error


@dataclass
class Team:
    url: str
    root: Path

    def env(self, user: str | None, password: str | None = None) -> dict[str, str]:
        """A member's environment: the server, and their credentials (none for None)."""
        env = {"MLFLOW_TRACKING_URI": self.url, "MLFLOW_TRACKING_USERNAME": "",
               "MLFLOW_TRACKING_PASSWORD": ""}
        if user:
            env |= {"MLFLOW_TRACKING_USERNAME": user,
                    "MLFLOW_TRACKING_PASSWORD": password or USERS[user]}
        return env

    def client(self) -> MlflowClient:
        """The admin's view, to check what happened."""
        admin = f"admin:{USERS['admin']}@"
        return MlflowClient(self.url.replace("http://", f"http://{admin}"))

    def rest(self, user: str | None, method: str, path: str, payload: dict) -> int:
        """Status of one REST call as `user` (None: no credentials)."""
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         data=json.dumps(payload).encode(),
                                         headers={"Content-Type": "application/json"})
        if user:
            token = base64.b64encode(f"{user}:{USERS[user]}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status
        except urllib.error.HTTPError as err:
            return err.code


def add_user(team: Team, as_user: str, name: str, role: str) -> subprocess.CompletedProcess:
    """`modelyard users add`, the new password on stdin as a script would give it."""
    return subprocess.run([MODELYARD, "users", "add", name, "--role", role],
                          input=f"{USERS.get(name, 'another-pw-0000')}\n", capture_output=True,
                          text=True, env=cli_env(team.env(as_user)), timeout=120)


def one_line_refusal(result: subprocess.CompletedProcess, only_line: bool = True) -> str:
    """The refusal's one line; `only_line`: nothing else on stderr (loading a model prints
    MLflow's download progress first)."""
    assert result.returncode == REFUSED, result.stdout + result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("modelyard: error: ")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert not only_line or lines == errors, result.stderr[-2000:]
    return errors[0]


@pytest.fixture(scope="module")
def team(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory) -> Team:
    """The server (its admin's password in a file of mode 600), a researcher and a promoter."""
    root = tmp_path_factory.mktemp("team")
    secret = root / "admin-password"
    secret.write_text(f"{USERS['admin']}\n")
    secret.chmod(0o600)
    database = postgres.new_database(f"auth_{os.getpid()}")
    with modelyard_server(database, root, f"auth.admin_password_file={secret}") as url:
        team = Team(url, root)
        for user, role in (("rita", "researcher"), ("pete", "promoter")):
            added = add_user(team, "admin", user, role)
            assert added.returncode == 0, added.stderr[-2000:]
        yield team


@pytest.mark.slow
def test_researchers_register_and_only_managers_move_champion(team: Team, train,
                                                              data_dir: Path) -> None:
    client = team.client()
    # the admin made the team's models, so registering first makes no researcher their manager
    assert {m.name for m in client.search_registered_models()} == {
        "market-regressor", "mnist-cnn", "sentiment-lstm"}

    trained = train("experiment=market_regressor", "debug=fast", env=team.env("rita"))
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert client.get_model_version_by_alias(NAME, "challenger").version == "1"
    alias = "/api/2.0/mlflow/registered-models/alias"
    assert team.rest("rita", "POST", alias, {"name": NAME, "alias": "challenger",
                                             "version": "1"}) == 200

    # a researcher's promotion: one line naming the permission, and nothing written
    refused = one_line_refusal(run_cli("models", "promote", NAME, LOOSE_FLOOR,
                                       env=team.env("rita")))
    assert "needs MANAGE permission" in refused and "rita has EDIT" in refused
    assert client.get_registered_model(NAME).aliases == {"challenger": "1"}
    assert not [k for k in client.get_model_version(NAME, "1").tags if "promotion" in k]
    assert f"{NAME}.promotion-lock" not in {m.name for m in client.search_registered_models()}
    assert not client.search_runs([client.get_experiment_by_name("market_regressor")
                                   .experiment_id], "tags.`modelyard.job` = 'promote'")
    # nor can the REST API move it for them: the server wants MANAGE for `champion`
    assert team.rest("rita", "POST", alias, {"name": NAME, "alias": "champion",
                                             "version": "1"}) == 403

    promoted = run_cli("models", "promote", NAME, LOOSE_FLOOR, env=team.env("pete"))
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr[-2000:]
    better = train("experiment=market_regressor", "debug=fast", "trainer.max_epochs=4",
                   env=team.env("rita"))
    assert better.returncode == 0, better.stderr[-2000:]
    promoted = run_cli("models", "promote", NAME, LOOSE_FLOOR, env=team.env("pete"))
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr[-2000:]
    assert client.get_model_version_by_alias(NAME, "champion").version == "2"

    refused = one_line_refusal(run_cli("models", "rollback", NAME, env=team.env("rita")))
    assert "may not roll back" in refused and "needs MANAGE permission" in refused
    assert client.get_model_version_by_alias(NAME, "champion").version == "2"
    assert "rollback.pending" not in client.get_registered_model(NAME).tags
    rolled = run_cli("models", "rollback", NAME, env=team.env("pete"))
    assert rolled.returncode == 0, rolled.stderr[-2000:]
    assert client.get_model_version_by_alias(NAME, "champion").version == "1"

    assert "not an admin" in one_line_refusal(add_user(team, "pete", "mallory", "promoter"))

    # a version whose weights were replaced in the artifact store is not loaded
    model_id = client.get_model_version(NAME, "2").source.removeprefix("models:/")
    [weights] = (team.root / "artifacts").rglob(f"models/{model_id}/artifacts/artifacts/weights.pt")
    original = weights.read_bytes()
    state = torch.load(weights, weights_only=True)
    torch.save({k: v * 2 if v.is_floating_point() else v for k, v in state.items()}, weights)
    try:
        refused = one_line_refusal(run_cli("predict", NAME, str(data_dir / "market" / "test.csv"),
                                           "--alias", "challenger", env=team.env("pete")),
                                   only_line=False)
        assert "refusing to load a tampered model" in refused
    finally:
        weights.write_bytes(original)

    recorded = json.dumps([[r.data.params, r.data.tags] for r in client.search_runs(
        [e.experiment_id for e in client.search_experiments()])])
    recorded += json.dumps([v.tags for v in client.search_model_versions(f"name='{NAME}'")])
    assert not [p for p in USERS.values() if p in recorded]


@pytest.mark.slow
def test_no_or_wrong_credentials_are_refused_in_one_line_at_once(team: Team) -> None:
    assert team.rest(None, "GET", "/api/2.0/mlflow/experiments/search", {}) == 401
    missing = one_line_refusal(run_cli("models", "list", env=team.env(None)))
    assert "HTTP 401" in missing and "set MLFLOW_TRACKING_USERNAME" in missing

    start = time.monotonic()
    wrong = run_cli("models", "promote", NAME, env=team.env("pete", "not-pete-s-password"))
    seconds = time.monotonic() - start
    assert "wrong password for user 'pete'" in one_line_refusal(wrong)
    assert "not-pete-s-password" not in wrong.stderr
    print(f"wrong password: refused in {seconds:.1f} s")  # a figure for the record, no bound


@pytest.mark.slow
def test_server_refuses_a_network_without_authentication_in_one_line(tmp_path: Path) -> None:
    result = run_cli("server", "host=0.0.0.0", f"port={free_port()}", "auth.enabled=false",
                     timeout=60)
    assert "without authentication" in one_line_refusal(result)
    assert "insecure=true" in result.stderr
    loose = tmp_path / "admin-password"
    loose.write_text("an-admin-password\n")
    loose.chmod(0o644)
    result = run_cli("server", f"port={free_port()}", f"auth.admin_password_file={loose}",
                     env={"MLFLOW_BACKEND_STORE_URI": f"sqlite:///{tmp_path}/mlflow.db"},
                     timeout=60)
    assert "can be read by others (mode 0644)" in one_line_refusal(result)
    assert "an-admin-password" not in result.stderr + result.stdout


# -- in-process: the checks the server makes before it starts ----------------------------


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
