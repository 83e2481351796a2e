"""Figures a person would rather look at than read. Pure matplotlib (Agg), no tracking."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

DPI = 120  # every PNG, logged to MLflow or written by the plots stage
# One colour per task, the same in every figure; tasks not listed get one from the cycle.
TASK_COLOURS = {"market_regressor": "#1b7837", "mnist_cnn": "#2166ac",
                "sentiment_lstm": "#b2182b"}
FAMILY_TITLES = {"loss": "loss", "acc": "accuracy", "f1": "F1 (macro)", "auroc": "ROC AUC",
                 "mse": "mean squared error", "mae": "mean absolute error", "r2": "R²"}


def task_colour(task: str) -> str:
    if task in TASK_COLOURS:
        return TASK_COLOURS[task]
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return cycle[sum(map(ord, task)) % len(cycle)]


def metric_families(history: dict[str, list[float]]) -> list[str]:
    """Metric names (loss, acc, ...) with loss first; a family that repeats the loss point for
    point (a regressor's MSE is its loss) is left out."""
    names = sorted({key.split("_", 1)[1] for key in history if "_" in key},
                   key=lambda n: (n != "loss", n))

    def same_as_loss(name: str) -> bool:
        return name != "loss" and all(
            history.get(f"{stage}_{name}") is not None
            and np.allclose(history[f"{stage}_{name}"], history.get(f"{stage}_loss", []))
            for stage in ("train", "val") if f"{stage}_{name}" in history)

    return [name for name in names if not same_as_loss(name)]


def learning_curves(history: dict[str, list[float]], task: str = "") -> Figure:
    """One panel per metric family (loss, accuracy, ...) with its train (dashed) and validation
    (solid) curves in the task's colour; at most three panels a row."""
    names = metric_families(history)
    columns = min(3, max(1, len(names)))
    rows = -(-len(names) // columns) or 1
    fig, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 3.6 * rows),
                             squeeze=False)
    colour = task_colour(task)
    for ax, name in zip(axes.flat, names, strict=False):
        for stage, style in (("train", "--"), ("val", "-")):
            values = history.get(f"{stage}_{name}")
            if values:
                epochs = range(1, len(values) + 1)
                ax.plot(epochs, values, style, color=colour, lw=1.6,
                        marker="o" if len(values) <= 30 else None, ms=3,
                        alpha=0.65 if stage == "train" else 1.0,
                        label="train" if stage == "train" else "validation")
        ax.set(title=FAMILY_TITLES.get(name, name), xlabel="epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend(frameon=False)
    for ax in list(axes.flat)[len(names):]:
        ax.set_visible(False)
    if task:
        fig.suptitle(f"{task}: learning curves", fontweight="bold")
    fig.tight_layout()
    return fig


def confusion_matrix(matrix: np.ndarray, labels: Sequence[object], task: str = "") -> Figure:
    """Counts with rows actual, columns predicted; big enough that no label overlaps another
    (two classes: ~700 px square, ten: ~1000 px)."""
    n = len(labels)
    side = max(5.5, 2.0 + 0.6 * n)
    fig, ax = plt.subplots(figsize=(side + 1.0, side))
    image = ax.imshow(matrix, cmap="Blues")
    longest = max((len(str(label)) for label in labels), default=1)
    ax.set_xticks(range(n), [str(label) for label in labels],
                  rotation=45 if longest > 3 and n > 4 else 0,
                  ha="right" if longest > 3 and n > 4 else "center")
    ax.set_yticks(range(n), [str(label) for label in labels])
    accuracy = np.trace(matrix) / max(matrix.sum(), 1)
    ax.set(xlabel="predicted", ylabel="actual",
           title=f"{task + ': ' if task else ''}test accuracy {accuracy:.4f}")
    threshold = matrix.max() / 2
    size = 12 if n <= 4 else 9
    for (row, col), count in np.ndenumerate(matrix):
        ax.text(col, row, int(count), ha="center", va="center", fontsize=size,
                color="white" if count > threshold else "black")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return fig


def predicted_vs_actual(actual: np.ndarray, predicted: np.ndarray, quantity: str,
                        task: str = "") -> Figure:
    """Both axes span the data (plus a margin), never from zero, on the same scale."""
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.scatter(actual, predicted, s=8, alpha=0.45, color=task_colour(task), edgecolors="none")
    low = float(min(actual.min(), predicted.min()))
    high = float(max(actual.max(), predicted.max()))
    margin = 0.03 * (high - low or 1.0)
    low, high = low - margin, high + margin
    ax.plot([low, high], [low, high], color="black", lw=1, label="predicted = actual")
    ax.set(xlim=(low, high), ylim=(low, high), aspect="equal")
    mse = float(np.mean((actual - predicted) ** 2))
    ax.set(xlabel=f"actual {quantity}", ylabel=f"predicted {quantity}",
           title=f"{task + ': ' if task else ''}test MSE {mse:.4f}")
    ax.legend(frameon=False, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def test_figures(table: dict[str, Sequence[float]], classes: Sequence[Any] | None,
                 quantity: str, task: str = "") -> dict[str, Figure]:
    """What a test run's (actual, predicted) pairs look like, by file name: a confusion
    matrix for classes, predicted against actual for a quantity (named as the data config
    names the target column: a user's own data keeps its own name)."""
    actual, predicted = np.asarray(table["actual"]), np.asarray(table["predicted"])
    class_names = [str(c) for c in classes or ()]
    if class_names:
        matrix = np.zeros((len(class_names), len(class_names)), dtype=int)
        np.add.at(matrix, (actual.astype(int), predicted.astype(int)), 1)
        return {"confusion_matrix.png": confusion_matrix(matrix, class_names, task)}
    return {"predicted_vs_actual.png": predicted_vs_actual(actual, predicted, quantity, task)}


def write_pipeline_plots(task: str) -> list[Path]:
    """The pipeline's figures for a task, from what its train and evaluate stages wrote:
    pipeline/<task>/plots/{learning_curves,confusion_matrix|predicted_vs_actual}.png."""
    import csv

    from modelyard import project
    from modelyard.errors import DataError
    from modelyard.training.export import model_record

    stage_dir = project.root() / "pipeline" / task

    def columns(path: Path) -> dict[str, list[float]]:
        if not path.is_file():
            raise DataError(f"{path}: missing; run `dvc repro {task}` first")
        with path.open() as fh:
            rows = list(csv.DictReader(fh))
        return {key: [float(row[key]) for row in rows] for key in (rows[0] if rows else {})}

    history = columns(stage_dir / "train" / "history.csv")
    model_file = stage_dir / "train" / "model.ckpt"
    if not model_file.is_file():
        raise DataError(f"{model_file}: missing; run `dvc repro {task}` first")
    trained = model_record(model_file)  # the target and classes it was trained on
    history.pop("epoch", None)
    figures = {
        "learning_curves.png": learning_curves(history, task),
        **test_figures(columns(stage_dir / "evaluate" / "predictions.csv"),
                       trained.get("classes"), trained.get("target", "value"), task),
    }
    out = stage_dir / "plots"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, figure in figures.items():
        figure.savefig(out / name, dpi=DPI)
        plt.close(figure)
        written.append(out / name)
    return written
