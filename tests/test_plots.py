"""The figures: what a test split's (actual, predicted) pairs and an epoch history look like,
and the pipeline's plots stage, which draws them from the files train and evaluate wrote."""

from __future__ import annotations

import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from modelyard import plots
from modelyard.errors import DataError
from modelyard.training.outputs import write_table

from conftest import ROOT, working_directory


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_classes_make_a_confusion_matrix_of_counts() -> None:
    table = {"actual": [0, 0, 1, 1, 2, 2, 2, 2], "predicted": [0, 1, 1, 1, 2, 2, 2, 0]}
    figures = plots.test_figures(table, ("zero", "one", "two"), "value")
    assert list(figures) == ["confusion_matrix.png"]
    ax = figures["confusion_matrix.png"].axes[0]
    assert ax.get_title() == "test accuracy 0.7500"  # 6 of 8 on the diagonal
    assert [t.get_text() for t in ax.get_xticklabels()] == ["zero", "one", "two"]
    counts = [[int(t.get_text()) for t in ax.texts[row * 3:(row + 1) * 3]] for row in range(3)]
    assert counts == [[1, 1, 0], [0, 2, 0], [1, 0, 3]]  # rows actual, columns predicted


def test_a_quantity_makes_predicted_against_actual() -> None:
    table = {"actual": [1.0, 2.0, 3.0], "predicted": [1.0, 2.0, 5.0]}
    figures = plots.test_figures(table, (), "log_gdp")
    assert list(figures) == ["predicted_vs_actual.png"]
    ax = figures["predicted_vs_actual.png"].axes[0]
    assert ax.get_xlabel() == "actual log_gdp" and ax.get_ylabel() == "predicted log_gdp"
    assert ax.get_title() == "test MSE 1.3333"


def test_learning_curves_have_a_panel_per_metric_with_train_and_val() -> None:
    history = {"train_loss": [3.0, 2.0, 1.0], "val_loss": [3.5, 2.5, 2.0], "val_acc": [0.5, 0.6,
                                                                                      0.7]}
    figure = plots.learning_curves(history)
    panels = {ax.get_title(): ax for ax in figure.axes}
    assert set(panels) == {"acc", "loss"}
    assert [line.get_label() for line in panels["loss"].lines] == ["train", "val"]
    assert [line.get_label() for line in panels["acc"].lines] == ["val"]
    assert list(panels["loss"].lines[0].get_ydata()) == [3.0, 2.0, 1.0]


@pytest.fixture()
def pipeline_project(tmp_path: Path) -> Path:
    """A project whose train and evaluate stages of mnist_cnn have run (their CSVs only)."""
    root = tmp_path / "project"
    shutil.copytree(ROOT / "conf", root / "conf")
    stage = root / "pipeline" / "mnist_cnn"
    write_table(stage / "train" / "history.csv",
                {"epoch": [1, 2], "train_loss": [0.5, 0.3], "val_loss": [0.4, 0.35],
                 "val_acc": [0.9, 0.95]})
    write_table(stage / "evaluate" / "predictions.csv",
                {"actual": [3, 7, 7], "predicted": [3, 7, 1]})
    return root


def test_plots_stage_draws_the_pipeline_figures_from_its_files(pipeline_project: Path) -> None:
    with working_directory(pipeline_project):
        written = plots.write_pipeline_plots("mnist_cnn", [])
    out = pipeline_project / "pipeline" / "mnist_cnn" / "plots"
    assert sorted(written) == [out / "confusion_matrix.png", out / "learning_curves.png"]
    for path in written:
        assert path.read_bytes().startswith(b"\x89PNG")


def test_plots_stage_says_which_stage_to_run_first(pipeline_project: Path) -> None:
    (pipeline_project / "pipeline" / "mnist_cnn" / "evaluate" / "predictions.csv").unlink()
    with working_directory(pipeline_project), pytest.raises(DataError) as caught:
        plots.write_pipeline_plots("mnist_cnn", [])
    assert "predictions.csv" in str(caught.value) and "dvc repro mnist_cnn" in str(caught.value)
