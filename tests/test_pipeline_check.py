"""`make pipeline`'s check (tools/pipeline_check.py): outputs that another kind of CPU gives
other bytes pass; anything that says the committed lock is not this code, data or params
does not. Run on the committed dvc.lock and edits of it."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from pipeline_check import metric_problems, outputs, stage_problems, stray_files  # noqa: E402

from conftest import BIN, cli_env  # noqa: E402

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
        entry(changed, TRAIN, "deps", "src/modelyard/models")["md5"] = "0" * 32
        expected = f"stage {TRAIN}: dependency src/modelyard/models differs"
    elif edit == "params":
        changed[TRAIN]["params"]["params.yaml"]["mnist_cnn.lr"] = 0.5
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


@pytest.mark.slow
def test_other_bytes_fail_unless_a_tolerance_is_given(tmp_path: Path) -> None:
    """On a clone of HEAD: a figure with other bytes and no metric moved fails by default (the
    check is byte for byte) and passes with --tolerance; a metric beyond it fails again."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)

    def check(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "python"), str(ROOT / "tools" / "pipeline_check.py"),
                               *args], cwd=clone, env=cli_env(), capture_output=True, text=True)

    assert check().returncode == 0
    with (clone / "pipeline/mnist_cnn/plots/learning_curves.png").open("ab") as figure:
        figure.write(b"\0")
    strict = check()
    assert strict.returncode == 1 and "no test metric moved" in strict.stderr, strict.stderr
    assert check("--tolerance", "0.01").returncode == 0
    metrics = clone / "metrics/mnist_cnn.json"
    metrics.write_text(metrics.read_text().replace('"test_acc": 0.98', '"test_acc": 0.96'))
    moved = check("--tolerance", "0.01")
    assert moved.returncode == 1 and "test_acc moved" in moved.stderr, moved.stderr
