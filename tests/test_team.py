"""Team mode: `modelyard server` with MLflow's basic authentication on a real PostgreSQL. An
admin adds a researcher and a promoter; the researcher trains and registers, the promoter
promotes (two racing promotions leave one decision), rolls back and serves; a researcher's
promotion or rollback is one line that moves nothing; no credentials or wrong ones are refused
at once; a version whose weights were replaced is not loaded; no credential reaches MLflow.
One server for the module."""

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
from contract_cases import market_cases
from mlflow.tracking import MlflowClient

from conftest import MODELYARD, cli_env, free_port, modelyard_server, run_cli
from services import PASSWORD, USER, Postgres, post_json, served_model

NAME = "market-regressor"
TEAM_MODELS = {"market-regressor", "mnist-cnn", "sentiment-lstm"}
LOOSE_FLOOR = ["registry.policy.floor=1e9", "registry.policy.baseline=null"]  # debug-sized
USERS = {"admin": "admin-pw-31415926", "rita": "researcher-pw-2718", "pete": "promoter-pw-1618"}
REFUSED = 2  # modelyard's exit code for a user error
ALIAS = "/api/2.0/mlflow/registered-models/alias"


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

    def uri_of(self, user: str) -> str:
        """The server's URI with the user's credentials in it, as basic auth is often set."""
        return self.url.replace("http://", f"http://{user}:{USERS[user]}@")

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


def everything_recorded(client: MlflowClient) -> str:
    """Params, tags and config.yaml of every run, and tags of every model version."""
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    texts = [json.dumps([r.data.params, r.data.tags]) for r in runs]
    texts += [Path(client.download_artifacts(r.info.run_id, "config.yaml")).read_text()
              for r in runs if r.data.tags.get("modelyard.task") and "promote" not in
              r.info.run_name]
    texts += [json.dumps(v.tags) for v in client.search_model_versions(f"name='{NAME}'")]
    return "\n".join(texts)


@pytest.fixture(scope="module")
def team(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory) -> Team:
    """The server (its admin's password in a file of mode 600), a researcher and a promoter."""
    root = tmp_path_factory.mktemp("team")
    secret = root / "admin-password"
    secret.write_text(f"{USERS['admin']}\n")
    secret.chmod(0o600)
    database = postgres.new_database(f"team_{os.getpid()}")
    with modelyard_server(database, root, f"auth.admin_password_file={secret}") as url:
        team = Team(url, root)
        for user, role in (("rita", "researcher"), ("pete", "promoter")):
            added = add_user(team, "admin", user, role)
            assert added.returncode == 0, added.stderr[-2000:]
        yield team


@pytest.mark.slow
def test_a_team_trains_promotes_races_rolls_back_and_serves_through_the_server(
        team: Team, train, data_dir: Path) -> None:
    client = MlflowClient(team.uri_of("admin"))  # the admin's view, to check what happened
    # the admin made the team's models, so registering first makes no researcher their manager
    assert {m.name for m in client.search_registered_models()} == TEAM_MODELS

    rita = team.env("rita")
    trained = train("experiment=market_regressor", "debug=fast", env=rita)
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert client.get_model_version_by_alias(NAME, "challenger").version == "1"
    assert team.rest("rita", "POST", ALIAS, {"name": NAME, "alias": "challenger",
                                             "version": "1"}) == 200

    # a researcher's promotion: one line naming the permission, and nothing written
    refused = one_line_refusal(run_cli("models", "promote", NAME, *LOOSE_FLOOR, env=rita))
    assert "needs MANAGE permission" in refused and "rita has EDIT" in refused
    assert client.get_registered_model(NAME).aliases == {"challenger": "1"}
    assert not [k for k in client.get_model_version(NAME, "1").tags if "promotion" in k]
    assert {m.name for m in client.search_registered_models()} == TEAM_MODELS  # no lock
    experiment = client.get_experiment_by_name("market_regressor").experiment_id
    assert not client.search_runs([experiment], "tags.`modelyard.job` = 'promote'")
    # nor can the REST API move it for them: the server wants MANAGE for `champion`
    assert team.rest("rita", "POST", ALIAS, {"name": NAME, "alias": "champion",
                                             "version": "1"}) == 403

    # the promoter's credentials in the URI, the way basic auth is often configured
    pete = {"MLFLOW_TRACKING_URI": team.uri_of("pete")}
    first = run_cli("models", "promote", NAME, *LOOSE_FLOOR, env=pete)
    assert first.returncode == 0, first.stdout + first.stderr[-2000:]
    better = train("experiment=market_regressor", "debug=fast", "trainer.max_epochs=4", env=rita)
    assert better.returncode == 0, better.stderr[-2000:]
    racers = [subprocess.Popen([MODELYARD, "models", "promote", NAME, *LOOSE_FLOOR],
                               env=cli_env(pete),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for _ in range(2)]
    outcomes = sorted((r.wait(timeout=600), r.stdout.read()) for r in racers)
    assert [code for code, _ in outcomes] == [0, 3], outcomes
    assert "already champion" in outcomes[1][1]

    assert client.get_model_version_by_alias(NAME, "champion").version == "2"
    audit = client.get_model_version(NAME, "2").tags
    assert audit["promotion.decision"] == "promoted"
    assert audit["promotion.previous_champion"] == "1"
    assert client.get_model_version(NAME, "1").tags["challenged_by.v2"] == "promoted"
    gate_runs = client.search_runs(
        [experiment], filter_string=f"attributes.run_name = 'promote {NAME} v2'")
    assert len(gate_runs) == 1  # the second racer waited, then found nothing to do
    assert {m.name for m in client.search_registered_models()} == TEAM_MODELS  # lock released

    with served_model(f"models:/{NAME}@champion", pete, free_port()) as url:
        good, *_, missing = [c for c in market_cases(data_dir) if c.status == 200
                             or c.label == "column fertility missing"]
        status, body = post_json(url, good.body)
        assert status == 200 and len(body["predictions"]) == 2, body
        assert post_json(url, missing.body)[0] == 400

    refused = one_line_refusal(run_cli("models", "rollback", NAME, env=rita))
    assert "may not roll back" in refused and "needs MANAGE permission" in refused
    assert client.get_model_version_by_alias(NAME, "champion").version == "2"
    assert "rollback.pending" not in client.get_registered_model(NAME).tags
    rolled = run_cli("models", "rollback", NAME, env=pete)
    assert rolled.returncode == 0, rolled.stderr[-2000:]
    assert client.get_model_version_by_alias(NAME, "champion").version == "1"

    assert "not an admin" in one_line_refusal(add_user(team, "pete", "mallory", "promoter"))

    # a version whose weights were replaced in the server's artifact store is not loaded
    model_id = client.get_model_version(NAME, "2").source.removeprefix("models:/")
    [weights] = (team.root / "artifacts").rglob(f"models/{model_id}/artifacts/artifacts/weights.pt")
    original = weights.read_bytes()
    state = torch.load(weights, weights_only=True)
    torch.save({k: v * 2 if v.is_floating_point() else v for k, v in state.items()}, weights)
    try:
        refused = one_line_refusal(run_cli("predict", NAME, str(data_dir / "market" / "test.csv"),
                                           "--alias", "challenger", env=pete), only_line=False)
        assert "refusing to load a tampered model" in refused
    finally:
        weights.write_bytes(original)

    recorded = everything_recorded(client)
    assert not [p for p in (*USERS.values(), PASSWORD) if p in recorded]


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


def test_an_unreachable_backend_store_is_refused_in_one_line_without_its_password() -> None:
    from modelyard.errors import StoreError
    from modelyard.tracking.store import check_database

    # what `modelyard server` checks before it starts MLflow (nothing listens on the port)
    with pytest.raises(StoreError) as caught:
        check_database(f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{free_port()}/mlflow",
                       "backend store")
    message = str(caught.value)
    assert message.startswith("backend store postgresql://127.0.0.1:")
    assert "\n" not in message
    assert PASSWORD not in message and USER not in message


@pytest.mark.slow
def test_server_refuses_an_unusable_backend_store_in_one_line(postgres_url: str) -> None:
    wrong_password = postgres_url.replace(PASSWORD, "not-the-password")
    result = run_cli("server", f"port={free_port()}",
                     env={"MLFLOW_BACKEND_STORE_URI": wrong_password}, timeout=60)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.startswith("modelyard: error: backend store postgresql://127.0.0.1")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "not-the-password" not in result.stderr
