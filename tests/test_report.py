"""`modelyard report`: the pull-request report. The fast tests read `dvc repro` logs and render
markdown in-process; the slow ones run the command on a clone of the committed repository:
against its own HEAD (what .ci/run does on a one-commit clone), after a committed param change
that `dvc repro` trained (metric and param differences, changed figures, stages that ran),
after the same stages came back from DVC's run-cache, and on bad input."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from modelyard.report import stages
from modelyard.report.collect import Change
from modelyard.report.markdown import TaskSection, change, render

from conftest import ROOT, dvc, run_cli

TASK = "market_regressor"
EPOCHS = 2  # the param the slow tests change (150 in params.yaml): seconds of training
TARGET = f"plots@{TASK}"  # the end of the market chain: prepare, train, evaluate, plots
METRICS = Path("metrics") / f"{TASK}.json"


# -- fast: the parts, in-process ---------------------------------------------------------------

# What DVC 3 prints (dvc/stage/__init__.py, run.py, cache.py, repo/reproduce.py), with the
# colours a terminal gets and a stage command's own output in between.
REPRO_LOG = """\
'data.dvc' didn't change, skipping
Stage 'prepare@market' didn't change, skipping
Pulling data for stage: 'prepare@digits'
Stage 'train@market_regressor' is cached - skipping run, checking out outputs
\x1b[33mRunning stage 'train@mnist_cnn':\x1b[0m
> PYTHONPATH=src modelyard train experiment=mnist_cnn pipeline=dvc_stage
Epoch 3: 100%|██████████| 63/63 [00:01<00:00]\rEpoch 4:  12%|█         | 8/63
Pulling data for stage: 'train@sentiment_lstm'
Unable to pull data for stage: 'train@sentiment_lstm'
Stage 'train@sentiment_lstm' is cached - skipping run, checking out outputs
Running stage 'evaluate@mnist_cnn':
> PYTHONPATH=src modelyard evaluate experiment=mnist_cnn
ERROR: failed to reproduce 'evaluate@mnist_cnn': failed to run: modelyard evaluate, exited with 2
"""


def test_repro_log_gives_each_stage_its_last_outcome() -> None:
    assert stages.parse(REPRO_LOG) == {
        "data.dvc": stages.UNCHANGED,
        "prepare@market": stages.UNCHANGED,
        "prepare@digits": stages.PULLED,
        "train@market_regressor": stages.RESTORED,
        "train@mnist_cnn": stages.RAN,
        "train@sentiment_lstm": stages.RESTORED,  # tried to pull, then the run-cache had it
        "evaluate@mnist_cnn": stages.FAILED,
    }


def test_several_failed_stages_are_all_named() -> None:
    log = "ERROR: failed to reproduce stages: 'train@a', 'train@b' and 'plots@c'\n"
    assert stages.parse(log) == {s: stages.FAILED for s in ("train@a", "train@b", "plots@c")}


def test_a_file_that_is_not_a_repro_log_is_refused(tmp_path: Path) -> None:
    from modelyard.errors import ConfigError

    log = tmp_path / "pytest.log"
    log.write_text("5 passed in 1.2s\n")
    with pytest.raises(ConfigError, match="names no stage"):
        stages.read(log)
    with pytest.raises(ConfigError, match="No such file"):
        stages.read(tmp_path / "missing.log")


def test_changes_are_signed_bold_when_visible_and_plain_when_float_noise() -> None:
    assert change(0.9860, 0.9880) == "**+0.0020**"
    assert change(0.4640, 0.46402) == "+2.0e-05"
    assert change(0.5, 0.5) == ""
    assert change(None, 0.5) == "changed"
    assert change("adam", "adam") == ""


def test_render_groups_stages_by_task_and_shows_only_changed_figures() -> None:
    section = TaskSection(
        metrics=[Change("baseline_test_acc", 0.70, 0.70), Change("test_acc", 0.90, 0.95)],
        params=[Change("mnist_cnn.lr", 0.002, 0.003)],
        figures=[("learning_curves", "r-plots/a-base.png", "r-plots/a-this.png")],
        unchanged_figures=1)
    outcomes = {"prepare@digits": stages.UNCHANGED, "train@mnist_cnn": stages.RAN,
                "train@market_regressor": stages.RESTORED}
    text = render("main", "a" * 40, "b" * 40, outcomes, {"mnist_cnn": section})
    lines = text.splitlines()
    assert "Base `main` (aaaaaaa) against this revision (bbbbbbb" in text
    assert "1 ran, 1 restored from run-cache, 1 unchanged" in text
    assert "|  | prepare | train |" in lines
    assert "| `digits` | unchanged |  |" in lines
    assert "| `mnist_cnn` |  | **ran** |" in lines
    assert "| `market_regressor` |  | restored from run-cache |" in lines
    # the model's metric before its baseline's
    assert lines.index("| test_acc | 0.9000 | 0.9500 | **+0.0500** |") < lines.index(
        "| baseline_test_acc | 0.7000 | 0.7000 |  |")
    assert "| `mnist_cnn.lr` | 0.0020 | 0.0030 |" in lines
    assert ("| learning_curves | ![learning_curves, base](r-plots/a-base.png) | "
            "![learning_curves, this](r-plots/a-this.png) |") in lines
    assert "Figures unchanged: 1" in text


# -- slow: the command on a clone of this repository ------------------------------------------

def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def report(clone: Path, *args: str) -> subprocess.CompletedProcess:
    """`modelyard report` in `clone`, with the clone's own code."""
    return run_cli("report", *args, env={"PYTHONPATH": str(clone / "src")}, cwd=clone)


def repro(clone: Path, log: Path) -> dict[str, str]:
    """`dvc repro` of the market chain, its output saved as CI saves it; the outcomes."""
    done = dvc("repro", TARGET, cwd=clone)
    log.write_text(done.stdout + done.stderr)
    return stages.parse(log.read_text())


def section(text: str, task: str) -> str:
    """The part of a report under `### <task>`."""
    return text.split(f"\n### {task}\n", 1)[1].split("\n### ", 1)[0]


def row(text: str, first_cell: str) -> list[str]:
    [line] = [line for line in text.splitlines() if line.startswith(f"| {first_cell} |")]
    return [cell.strip() for cell in line.strip("|").split("|")]


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clone of the committed repository, as CI checks it out (no DVC data pulled)."""
    with pytest.MonkeyPatch.context() as env:
        for var in ("MLFLOW_TRACKING_URI", "MODELYARD_ROOT", "DVC_ROOT", "DVC_EXP_NAME"):
            env.delenv(var, raising=False)
        path = tmp_path_factory.mktemp("report") / "clone"
        git("clone", "--quiet", str(ROOT), str(path), cwd=path.parent)
        git("config", "user.email", "t@example.org", cwd=path)
        git("config", "user.name", "test", cwd=path)
        yield path


@pytest.mark.slow
def test_report_against_its_own_head_shows_no_difference(clone: Path) -> None:
    done = report(clone, "--base", "HEAD")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert text.startswith("## modelyard pipeline report")
    assert "Stages: not recorded" in text
    for task in yaml.safe_load((clone / "params.yaml").read_text())["tasks"]:
        assert f"### {task}" in text
    assert "**" not in text.split("Stages: not recorded", 1)[1]  # no change anywhere
    assert text.count("Params: same as the base.") == 3
    assert "![" not in text and "Figures unchanged: 2" in text


@pytest.mark.slow
def test_param_change_reports_metrics_params_figures_and_what_ran(clone: Path,
                                                                  tmp_path: Path) -> None:
    base = git("rev-parse", "HEAD", cwd=clone)
    params = clone / "params.yaml"
    values = yaml.safe_load(params.read_text())
    before = values["tasks"][TASK]["trainer"]["max_epochs"]
    assert before != EPOCHS
    values["tasks"][TASK]["trainer"]["max_epochs"] = EPOCHS
    params.write_text(yaml.safe_dump(values, sort_keys=False))
    git("commit", "-qam", f"{TASK}: {EPOCHS} epochs", cwd=clone)  # the lock is now stale

    outcomes = repro(clone, tmp_path / "repro.log")
    assert {s: outcomes[s] for s in (f"train@{TASK}", f"evaluate@{TASK}", TARGET)} == dict.fromkeys(
        (f"train@{TASK}", f"evaluate@{TASK}", TARGET), stages.RAN)

    out = tmp_path / "out" / "report.md"
    done = report(clone, "--base", base, "--repro-log", str(tmp_path / "repro.log"),
                  "-o", str(out))
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    assert done.stdout == ""  # written to the file only

    # every metric of the task: the base's committed value, the workspace's, the difference
    old = json.loads(git("show", f"{base}:{METRICS}", cwd=clone))
    new = json.loads((clone / METRICS).read_text())
    assert old["test_mse"] != new["test_mse"]
    ours = section(text, TASK)
    for name in old:
        assert row(ours, name)[1:3] == [f"{old[name]:.4f}", f"{new[name]:.4f}"]
    assert row(ours, "test_mse")[3] == change(old["test_mse"], new["test_mse"])
    knob = f"`tasks.{TASK}.trainer.max_epochs`"
    assert row(ours, knob) == [knob, str(before), str(EPOCHS)]
    assert text.count("Params that differ:") == 1

    # the learning curves changed: both images beside the report, linked relatively
    links = re.findall(r"!\[learning_curves, (base|this)\]\(([^)]+)\)", ours)
    assert [side for side, _ in links] == ["base", "this"]
    base_png, this_png = (out.parent / link for _, link in links)
    assert base_png.read_bytes() == subprocess.run(
        ["git", "show", f"{base}:pipeline/{TASK}/plots/learning_curves.png"], cwd=clone,
        check=True, capture_output=True).stdout
    assert this_png.read_bytes() == (clone / f"pipeline/{TASK}/plots/learning_curves.png"
                                     ).read_bytes()
    # columns: prepare, tasks (a stage of its own, its own row), train, evaluate, plots
    assert row(text, f"`{TASK}`")[1:] == ["", "", "**ran**", "**ran**", "**ran**"]

    # the same inputs again (the stale lock back, as in a fresh clone of that commit): DVC's
    # run-cache restores every stage, and the report says so
    git("checkout", "--", "dvc.lock", cwd=clone)
    outcomes = repro(clone, tmp_path / "again.log")
    assert outcomes[f"train@{TASK}"] == stages.RESTORED, outcomes
    done = report(clone, "--base", base, "--repro-log", str(tmp_path / "again.log"))
    assert done.returncode == 0, done.stderr
    assert row(done.stdout, f"`{TASK}`")[3:] == [stages.RESTORED] * 3  # train, evaluate, plots
    assert row(section(done.stdout, TASK), "test_mse")[2] == f"{new['test_mse']:.4f}"


@pytest.mark.slow
def test_bad_input_is_one_line_and_writes_nothing(clone: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.md"
    (tmp_path / "notes.txt").write_text("nothing about stages\n")
    project = tmp_path / "no-dvc"
    (project / "conf").mkdir(parents=True)
    (project / "conf" / "train.yaml").write_text((ROOT / "conf" / "train.yaml").read_text())
    git("init", "-q", cwd=project)
    cases = [
        (clone, ["--base", "no-such-rev"], "--base 'no-such-rev' is not a commit"),
        (clone, ["--base", "HEAD", "--repro-log", str(tmp_path / "missing.log")],
         "No such file"),
        (clone, ["--base", "HEAD", "--repro-log", str(tmp_path / "notes.txt")],
         "names no stage"),
        (clone, [], "required: --base"),
        (project, ["--base", "HEAD"], "is not a DVC repository"),
    ]
    for where, args, message in cases:
        done = report(where, *args, "-o", str(out))
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
        assert not out.exists()
