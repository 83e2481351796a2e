"""Team mode: `modelyard server` on a real PostgreSQL; training, registration, racing
promotions and serving all go through it, and no credential reaches MLflow."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conftest import MODELYARD, cli_env, free_port, run_cli
from services import PASSWORD, USER, payloads, post_json, served_model

NAME = "market-regressor"
LOOSE_FLOOR = "registry.policy.market_regressor.floor=1e9"  # debug-sized models


def everything_recorded(client: MlflowClient) -> str:
    """Params, tags and config.yaml of every run, and tags of every model version."""
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    texts = [json.dumps([r.data.params, r.data.tags]) for r in runs]
    texts += [Path(client.download_artifacts(r.info.run_id, "config.yaml")).read_text()
              for r in runs if r.data.tags.get("modelyard.task") and "promote" not in
              r.info.run_name]
    texts += [json.dumps(v.tags) for v in client.search_model_versions(f"name='{NAME}'")]
    return "\n".join(texts)


@pytest.mark.slow
def test_train_register_racing_promotions_and_serving_through_the_team_server(
    team_server: str, train, data_dir: Path
) -> None:
    # a member's URI with credentials in it (the server's admin), the way basic auth is often
    # configured; none of it may be recorded
    env = {"MLFLOW_TRACKING_URI": team_server.replace("http://", f"http://{USER}:{PASSWORD}@")}
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])

    assert train("experiment=market_regressor", "debug=fast", env=env).returncode == 0
    first = run_cli("models", "promote", NAME, LOOSE_FLOOR, env=env)
    assert first.returncode == 0, first.stdout + first.stderr[-2000:]

    better = train("experiment=market_regressor", "debug=fast", "trainer.max_epochs=4", env=env)
    assert better.returncode == 0, better.stderr[-2000:]
    racers = [subprocess.Popen([MODELYARD, "models", "promote", NAME, LOOSE_FLOOR],
                               env=cli_env(env),
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
        [client.get_experiment_by_name("market_regressor").experiment_id],
        filter_string=f"attributes.run_name = 'promote {NAME} v2'",
    )
    assert len(gate_runs) == 1  # the second racer waited, then found nothing to do
    assert [m.name for m in client.search_registered_models()] == [NAME]  # lock released

    assert PASSWORD not in everything_recorded(client)

    with served_model(f"models:/{NAME}@champion", env, free_port()) as url:
        good, bad = payloads("market_regressor", data_dir)
        status, body = post_json(url, good)
        assert status == 200 and len(body["predictions"]) == 2, body
        assert 400 <= post_json(url, bad[0])[0] < 500


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
