"""`make pipeline`'s check (tools/pipeline_check.py): outputs that another kind of CPU gives
other bytes pass; anything that says the committed lock is not this code, data or params
does not. Run on the committed dvc.lock and edits of it."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from cpu_kind import cpu_kind  # noqa: E402
from pipeline_check import (  # noqa: E402
    CPU_KIND,
    metric_problems,
    outputs,
    stage_problems,
    stray_files,
)

from conftest import BIN, cli_env, git  # noqa: E402

LOCK = yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"]
TRAIN, EVALUATE = "train@mnist_cnn", "evaluate@mnist_cnn"
MODEL = "pipeline/mnist_cnn/train/model.ckpt"


def entry(lock: dict, stage: str, section: str, path: str) -> dict:
    [found] = [e for e in lock[stage][section] if e["path"] == path]
    return found


def test_the_committed_lock_against_itself_has_no_problem() -> None:
    assert stage_problems(LOCK, copy.deepcopy(LOCK)) == []
    assert {MODEL, "metrics/mnist_cnn.json", "data/digits"} <= outputs(LOCK)


def test_other_bytes_of_a_model_and_of_what_is_made_from_it_are_no_problem() -> None:
    other_cpu = copy.deepcopy(LOCK)
    entry(other_cpu, TRAIN, "outs", MODEL)["md5"] = "0" * 32
    entry(other_cpu, EVALUATE, "deps", MODEL)["md5"] = "0" * 32  # an output read downstream
    assert stage_problems(LOCK, other_cpu) == []


@pytest.mark.parametrize("edit", ["code", "params", "command", "stage"])
def test_a_lock_that_is_not_this_code_params_or_pipeline_is_a_problem(edit: str) -> None:
    changed = copy.deepcopy(LOCK)
    if edit == "code":
        entry(changed, "tasks", "deps", "src/modelyard/models")["md5"] = "0" * 32
        expected = "stage tasks: dependency src/modelyard/models differs"
    elif edit == "params":
        changed[TRAIN]["params"]["params.yaml"]["tasks.mnist_cnn"]["model"]["lr"] = 0.5
        expected = f"stage {TRAIN}: its params differ"
    elif edit == "command":
        changed[TRAIN]["cmd"] += " model.dropout=0.1"
        expected = f"stage {TRAIN}: its command differs"
    else:
        del changed[EVALUATE]
        expected = f"stage {EVALUATE}: in one dvc.lock only"
    [problem] = stage_problems(LOCK, changed)
    assert problem.startswith(expected), problem


def test_only_dvc_lock_and_stage_outputs_may_change() -> None:
    outs = outputs(LOCK)
    allowed = ["dvc.lock", "metrics/mnist_cnn.json", "pipeline/mnist_cnn/plots/learning_curves.png",
               "pipeline/mnist_cnn/evaluate/predictions.csv"]
    assert stray_files(allowed, outs) == []
    assert stray_files(["src/modelyard/plots.py", "params.yaml", "pipeline/notes.txt"], outs) == [
        "src/modelyard/plots.py: changed, and no stage writes it",
        "params.yaml: changed, and no stage writes it",
        "pipeline/notes.txt: changed, and no stage writes it"]


def test_metrics_may_move_within_the_tolerance_only() -> None:
    diff = {"metrics/mnist_cnn.json": {
        "test_acc": {"old": 0.986, "new": 0.988, "diff": 0.002},
        "test_loss": {"old": 0.0438, "new": 0.0394, "diff": -0.0044}}}
    assert metric_problems(diff, tolerance=0.01) == []
    assert metric_problems(diff, tolerance=0.003) == [
        "metrics/mnist_cnn.json: test_loss moved 0.0438 -> 0.0394, more than the tolerance 0.003"]
    gone = {"metrics/mnist_cnn.json": {"test_f1": {"old": 0.98, "new": None}}}
    [problem] = metric_problems(gone, tolerance=0.01)
    assert problem.startswith("metrics/mnist_cnn.json: test_f1 is new or gone")


def clone_of_head(tmp_path: Path, made_on: dict) -> Path:
    """A clone of HEAD whose committed models say they were made on `made_on`."""
    clone = tmp_path / "clone"
    git("clone", "-q", str(ROOT), str(clone), cwd=tmp_path)
    for task in yaml.safe_load((clone / "params.yaml").read_text())["tasks"]:
        (clone / "pipeline" / task / CPU_KIND).write_text(json.dumps(made_on, indent=2) + "\n")
    git("commit", "-qam", "made on", "--allow-empty", cwd=clone)
    return clone


def run_check(clone: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "python"), str(ROOT / "tools" / "pipeline_check.py"), *args],
                          cwd=clone, env=cli_env(), capture_output=True, text=True)


def move_metric(clone: Path, by: float) -> None:
    """The CNN's test accuracy, `by` below the committed one."""
    committed = json.loads((ROOT / "metrics/mnist_cnn.json").read_text())
    metrics = clone / "metrics/mnist_cnn.json"
    metrics.write_text(json.dumps({**committed, "test_acc": committed["test_acc"] - by}))


@pytest.mark.slow
def test_models_made_on_this_cpu_kind_must_come_out_byte_for_byte(tmp_path: Path) -> None:
    """A figure with other bytes and no metric moved fails by default and passes with
    --tolerance; a metric beyond it fails again."""
    clone = clone_of_head(tmp_path, cpu_kind())
    assert run_check(clone).returncode == 0
    with (clone / "pipeline/mnist_cnn/plots/learning_curves.png").open("ab") as figure:
        figure.write(b"\0")
    strict = run_check(clone)
    assert strict.returncode == 1 and "no test metric moved" in strict.stderr, strict.stderr
    assert run_check(clone, "--tolerance", "0.01").returncode == 0
    move_metric(clone, 0.02)
    moved = run_check(clone, "--tolerance", "0.01")
    assert moved.returncode == 1 and "test_acc moved" in moved.stderr, moved.stderr


@pytest.mark.slow
def test_models_made_on_another_cpu_kind_may_move_within_the_cross_cpu_tolerance(
    tmp_path: Path,
) -> None:
    other = {**cpu_kind(), "vendor": "OtherVendor", "model": "Another CPU",
             "instruction_sets": ["avx2", "fma", "avx512f"]}
    clone = clone_of_head(tmp_path, other)
    move_metric(clone, 0.01)  # within the default 0.02
    passed = run_check(clone)
    assert passed.returncode == 0, passed.stderr
    assert "made on Another CPU (avx2, fma, avx512f" in passed.stdout, passed.stdout
    move_metric(clone, 0.04)  # more than another CPU explains
    failed = run_check(clone)
    assert failed.returncode == 1 and "more than another CPU explains" in failed.stderr
    # a stale lock still fails whatever the CPU
    (clone / "params.yaml").write_text((clone / "params.yaml").read_text() + "\n")
    assert "no stage writes it" in run_check(clone, "--cross-cpu-tolerance", "1").stderr
