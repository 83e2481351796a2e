"""The figures: what a test split's (actual, predicted) pairs and an epoch history look like,
and the pipeline's plots stage, which draws them from the files train and evaluate wrote."""

from __future__ import annotations

import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
import torch

from modelyard import plots
from modelyard.errors import DataError
from modelyard.training.export import RECORD_KEY
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


def test_learning_curves_have_a_panel_per_metric_family_in_the_task_s_colour() -> None:
    history = {"train_loss": [3.0, 2.0, 1.0], "val_loss": [3.5, 2.5, 2.0], "val_acc": [0.5, 0.6,
                                                                                      0.7]}
    figure = plots.learning_curves(history, "mnist_cnn")
    panels = {ax.get_title(): ax for ax in figure.axes if ax.get_visible()}
    assert list(panels) == ["loss", "accuracy"]  # loss first, one family a panel
    assert [line.get_label() for line in panels["loss"].lines] == ["train", "validation"]
    assert [line.get_label() for line in panels["accuracy"].lines] == ["validation"]
    assert list(panels["loss"].lines[0].get_ydata()) == [3.0, 2.0, 1.0]
    colours = {line.get_color() for ax in panels.values() for line in ax.lines}
    assert colours == {plots.TASK_COLOURS["mnist_cnn"]}
    other = plots.learning_curves(history, "sentiment_lstm").axes[0].lines[0].get_color()
    assert other != plots.TASK_COLOURS["mnist_cnn"]


def test_a_family_that_repeats_the_loss_gets_no_panel_of_its_own() -> None:
    history = {"train_loss": [2.0, 1.0], "train_mse": [2.0, 1.0], "val_loss": [2.5, 1.5],
               "val_mse": [2.5, 1.5], "val_r2": [0.5, 0.7], "val_mae": [1.0, 0.9]}
    titles = [ax.get_title() for ax in plots.learning_curves(history).axes if ax.get_visible()]
    assert titles == ["loss", "mean absolute error", "R²"]


def test_a_two_class_confusion_matrix_is_big_enough_to_read() -> None:
    table = {"actual": [0, 0, 1, 1], "predicted": [0, 1, 1, 1]}
    figure = plots.test_figures(table, ("negative", "positive"), "", "sentiment_lstm")[
        "confusion_matrix.png"]
    width, height = figure.get_size_inches() * plots.DPI
    assert plots.DPI >= 100 and min(width, height) >= 600
    assert figure.axes[0].get_title() == "sentiment_lstm: test accuracy 0.7500"


def test_predicted_against_actual_fits_its_axes_to_the_data() -> None:
    table = {"actual": [20.0, 24.0, 28.0], "predicted": [21.0, 23.5, 27.0]}
    ax = plots.test_figures(table, (), "revenue", "market_regressor")[
        "predicted_vs_actual.png"].axes[0]
    for low, high in (ax.get_xlim(), ax.get_ylim()):
        assert 19.0 < low < 20.0 and 28.0 < high < 29.0  # not from zero
    assert ax.get_xlabel() == "actual revenue"  # the data config's target column


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
    # what the train stage's model file records of its data (training/export.py)
    torch.save({"state_dict": {}, RECORD_KEY: {"task": "mnist_cnn", "target": "digit",
                                               "classes": list(range(10))}},
               stage / "train" / "model.ckpt")
    return root


def test_plots_stage_draws_the_pipeline_figures_from_its_files(pipeline_project: Path) -> None:
    with working_directory(pipeline_project):
        written = plots.write_pipeline_plots("mnist_cnn")
    out = pipeline_project / "pipeline" / "mnist_cnn" / "plots"
    assert sorted(written) == [out / "confusion_matrix.png", out / "learning_curves.png"]
    for path in written:
        assert path.read_bytes().startswith(b"\x89PNG")


def test_plots_stage_says_which_stage_to_run_first(pipeline_project: Path) -> None:
    (pipeline_project / "pipeline" / "mnist_cnn" / "evaluate" / "predictions.csv").unlink()
    with working_directory(pipeline_project), pytest.raises(DataError) as caught:
        plots.write_pipeline_plots("mnist_cnn")
    assert "predictions.csv" in str(caught.value) and "dvc repro mnist_cnn" in str(caught.value)
