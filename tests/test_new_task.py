"""A fourth task, added as the README's "Add your own task" says, word for word: its code
blocks are the files this test writes and the commands it runs, in a temporary clone of the
committed repository. Then train -> register -> promote -> `modelyard predict` ->
`mlflow models serve` over HTTP -> `dvc repro`, and: nothing under src/modelyard/ but the new
model file changed, and no shipped stage re-ran."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import BIN, ROOT, dvc, free_port, git, run_cli
from services import post_json, served_model

pytestmark = pytest.mark.slow

SECTION = "### Add your own task"
TASK, NAME = "wine_mlp", "wine-mlp"
SHIPPED = ("market_regressor", "mnist_cnn", "sentiment_lstm")


def readme_blocks() -> tuple[list[tuple[str, str]], str]:
    """The section's fenced code blocks (language, text) in order, and its prose."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index(SECTION):]
    section = section[:section.index("\n### ", len(SECTION))]
    blocks = re.findall(r"```(\w+)\n(.*?)```", section, flags=re.S)
    return blocks, section


def clone_with_pipeline(tmp_path: Path) -> Path:
    """A clone of HEAD sharing this checkout's DVC cache (a team's shared cache), its
    committed outputs checked out."""
    clone = tmp_path / "clone"
    git("clone", "-q", str(ROOT), str(clone), cwd=tmp_path)
    dvc("cache", "dir", "--local", str(ROOT / ".dvc" / "cache"), cwd=clone)
    dvc("checkout", cwd=clone)
    return clone


def shell(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """A README bash block, with the venv's python, dvc and modelyard first on PATH."""
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd,
                            env={**os.environ, **env, "PATH": f"{BIN}:{os.environ['PATH']}",
                                 "DVC_NO_ANALYTICS": "1"},
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{script}\n{result.stdout}\n{result.stderr}"
    return result


def ran_stages(output: str) -> set[str]:
    """The stages `dvc repro` ran, or restored from its run-cache (a run of the same inputs
    before: the clone shares the DVC cache, and with it the run-cache)."""
    return set(re.findall(r"Running stage '([^']+)'", output)) | set(
        re.findall(r"Stage '([^']+)' is cached - skipping run", output))


def test_a_fourth_task_from_the_readme_trains_registers_promotes_serves_and_reproduces(
        tmp_path: Path) -> None:
    blocks, prose = readme_blocks()
    languages = [language for language, _ in blocks]
    assert languages == ["python", "yaml", "bash", "yaml", "yaml", "bash"], languages
    (model_code, _), (model_conf, _), (make_data, _), (data_conf, _), (experiment, _), \
        (commands, _) = [(text, language) for language, text in blocks]
    [params_line] = re.findall(r"one line\*\* in `params.yaml`.*?: `([^`]+)`", prose, re.S)

    clone = clone_with_pipeline(tmp_path)
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db",
           "PYTHONPATH": str(clone / "src")}
    # the committed pipeline, as it stands: nothing to run but what a clone re-makes
    before = dvc("repro", cwd=clone, env=env).stdout
    assert not {s for s in ran_stages(before) if s.startswith(("train@", "evaluate@"))}, before

    # the four files and the one line, as the README gives them
    (clone / "src/modelyard/models/mlp.py").write_text(model_code)
    (clone / "conf/model/mlp.yaml").write_text(model_conf)
    shell(make_data, clone, env)
    (clone / "conf/data/wine.yaml").write_text(data_conf)
    (clone / f"conf/experiment/{TASK}.yaml").write_text(experiment)
    params = clone / "params.yaml"
    params.write_text(params.read_text().rstrip("\n") + f"\n  {params_line}\n")
    assert yaml.safe_load(params.read_text())["tasks"][TASK] == {"data": {"path": "data/wine"}}

    # train -> registered challenger -> promoted champion
    lines = [line.split("#")[0].strip() for line in commands.splitlines()]
    assert lines[0] == f"modelyard train experiment={TASK}"
    trained = run_cli(*lines[0].split()[1:], env=env, cwd=clone, timeout=600)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert f"registered: models:/{NAME}/1" in trained.stdout
    assert "baseline_logistic_regression_test_acc" in trained.stdout
    assert "baseline_majority_class_test_acc" in trained.stdout
    assert lines[1] == f"modelyard models promote {NAME}"
    promoted = run_cli(*lines[1].split()[1:], env=env, cwd=clone)
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr[-3000:]
    assert "PROMOTED" in promoted.stdout

    # offline and over HTTP, outputs named after the data's target and classes
    test = pd.read_csv(clone / "data/wine/test.csv")
    rows = test.drop(columns="cultivar").head(5)
    rows.to_csv(clone / "rows.csv", index=False)
    assert lines[2].startswith(f"modelyard predict {NAME} rows.csv")
    predicted = run_cli("predict", NAME, "rows.csv", env=env, cwd=clone)
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    offline = pd.read_csv(io.StringIO(predicted.stdout))
    classes = sorted(test.cultivar.unique())
    assert list(offline.columns) == ["cultivar", *[f"p_{c}" for c in classes]]
    assert set(offline.cultivar) <= set(classes)
    assert lines[3].startswith(f"mlflow models serve -m models:/{NAME}@champion")
    with served_model(f"models:/{NAME}@champion", env, free_port()) as url:
        status, body = post_json(url, {"dataframe_split": {
            "columns": list(rows.columns), "data": rows.to_numpy().tolist()}})
        assert status == 200, body
        served = pd.DataFrame(body["predictions"])
        pd.testing.assert_frame_equal(served, offline, check_dtype=False)
        status, body = post_json(url, {"dataframe_split": {"columns": ["alcohol"],
                                                           "data": [[13.0]]}})
        assert status == 400 and "malic_acid" in body["message"], body

    # the pipeline: the new task's stages run, no shipped one does
    assert lines[-1] == "dvc repro"
    after = dvc("repro", cwd=clone, env=env).stdout
    ran = ran_stages(after)
    assert {f"train@{TASK}", f"evaluate@{TASK}", f"plots@{TASK}", f"register@{TASK}"} <= ran
    assert not [s for s in ran if s.endswith(SHIPPED)], after
    assert (clone / f"metrics/{TASK}.json").is_file()
    assert (clone / f"pipeline/{TASK}/plots/confusion_matrix.png").is_file()
    changed = git("status", "--porcelain", "--untracked-files=all", "--", "src/modelyard",
                  cwd=clone).splitlines()
    assert changed == ["?? src/modelyard/models/mlp.py"], changed


def test_own_data_in_the_pipeline_runs_stages_of_its_own_and_registers_its_own_model(
        tmp_path: Path) -> None:
    """The README's "Your own data in the pipeline": a params.yaml entry naming the task it
    trains; `dvc repro` runs that entry's stages alone, into outputs of its own."""
    text = (ROOT / "README.md").read_text()
    recipe = text[text.index("**Your own data in the pipeline**"):text.index(SECTION)]
    [(_, entry), (_, commands)] = re.findall(r"```(\w+)\n(.*?)```", recipe, flags=re.S)
    name = next(iter(yaml.safe_load(entry)))
    model = "market-regressor-" + name

    clone = clone_with_pipeline(tmp_path)
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db",
           "PYTHONPATH": str(clone / "src")}
    dvc("repro", cwd=clone, env=env)  # the committed pipeline, as a clone has it
    (clone / name).mkdir()
    for split in ("train", "val", "test"):  # a user's own table: the market one, reshuffled
        frame = pd.read_csv(clone / "data/market" / f"{split}.csv")
        frame.sample(frac=1.0, random_state=1).to_csv(clone / name / f"{split}.csv",
                                                      index=False)
    params = clone / "params.yaml"
    params.write_text(params.read_text().rstrip("\n") + "\n" + entry)
    assert yaml.safe_load(params.read_text())["tasks"][name]["experiment"] == "market_regressor"

    repro, sync = [line.split("#")[0].strip() for line in commands.splitlines()[1:3]]
    shell(commands.splitlines()[0], clone, env)  # dvc add, git add
    assert repro == "dvc repro"
    ran = ran_stages(dvc("repro", cwd=clone, env=env).stdout)
    assert ran == {"tasks", *(f"{stage}@{name}" for stage in
                              ("train", "evaluate", "plots", "cpu_kind", "register"))}, ran
    metrics = json.loads((clone / "metrics" / f"{name}.json").read_text())
    assert {"test_mse", "baseline_least_squares_test_mse"} <= set(metrics)
    assert (clone / "pipeline" / name / "plots" / "predicted_vs_actual.png").is_file()

    assert sync == "modelyard models sync"
    synced = run_cli("models", "sync", env=env, cwd=clone, timeout=900)
    assert synced.returncode == 0, synced.stdout + synced.stderr[-3000:]
    assert f"registered: models:/{model}/1" in synced.stdout
    test_rows = pd.read_csv(clone / name / "test.csv").drop(columns="log_gdp").head(3)
    test_rows.to_csv(clone / "rows.csv", index=False)
    predicted = run_cli("predict", model, "rows.csv", "--alias", "challenger", env=env,
                        cwd=clone)
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    assert len(pd.read_csv(io.StringIO(predicted.stdout))) == len(test_rows)
