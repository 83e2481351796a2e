"""Figures a person would rather look at than read. Pure matplotlib (Agg), no tracking."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def learning_curves(history: dict[str, list[float]]) -> Figure:
    """One panel per metric name (loss, acc, ...) with its train and val curves."""
    names = sorted({key.split("_", 1)[1] for key in history if "_" in key})
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.2), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        for stage in ("train", "val"):
            values = history.get(f"{stage}_{name}")
            if values:
                ax.plot(range(1, len(values) + 1), values, marker="o", ms=3, label=stage)
        ax.set(title=name, xlabel="epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def confusion_matrix(matrix: np.ndarray, labels: Sequence[object]) -> Figure:
    side = max(3.5, 1.2 + 0.55 * len(labels))
    fig, ax = plt.subplots(figsize=(side + 0.6, side))
    image = ax.imshow(matrix, cmap="Blues")
    ax.set(
        xticks=range(len(labels)), yticks=range(len(labels)),
        xticklabels=labels, yticklabels=labels,
        xlabel="predicted", ylabel="actual",
        title=f"test accuracy {np.trace(matrix) / max(matrix.sum(), 1):.4f}",
    )
    threshold = matrix.max() / 2
    for (row, col), count in np.ndenumerate(matrix):
        ax.text(col, row, int(count), ha="center", va="center", fontsize=8,
                color="white" if count > threshold else "black")
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def predicted_vs_actual(actual: np.ndarray, predicted: np.ndarray, quantity: str) -> Figure:
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(actual, predicted, s=6, alpha=0.5)
    low, high = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
    ax.plot([low, high], [low, high], color="black", lw=1, label="perfect")
    mse = float(np.mean((actual - predicted) ** 2))
    ax.set(xlabel=f"actual {quantity}", ylabel=f"predicted {quantity}", title=f"test MSE {mse:.4f}")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def test_figures(table: dict[str, Sequence[float]], class_names: Sequence[str],
                 quantity: str) -> dict[str, Figure]:
    """What a test run's (actual, predicted) pairs look like, by file name: a confusion
    matrix for classes, predicted against actual for a quantity."""
    actual, predicted = np.asarray(table["actual"]), np.asarray(table["predicted"])
    if class_names:
        matrix = np.zeros((len(class_names), len(class_names)), dtype=int)
        np.add.at(matrix, (actual.astype(int), predicted.astype(int)), 1)
        return {"confusion_matrix.png": confusion_matrix(matrix, class_names)}
    return {"predicted_vs_actual.png": predicted_vs_actual(actual, predicted, quantity)}


def write_pipeline_plots(task: str, overrides: list[str]) -> list[Path]:
    """The pipeline's figures for a task, from what its train and evaluate stages wrote:
    pipeline/<task>/plots/{learning_curves,confusion_matrix|predicted_vs_actual}.png."""
    import csv

    from hydra.utils import get_class

    from modelyard import project
    from modelyard.config import compose
    from modelyard.errors import DataError

    cfg = compose("train", [f"experiment={task}", *overrides])
    stage_dir = project.root() / "pipeline" / task

    def columns(path: Path) -> dict[str, list[float]]:
        if not path.is_file():
            raise DataError(f"{path}: missing; run `dvc repro {task}` first")
        with path.open() as fh:
            rows = list(csv.DictReader(fh))
        return {key: [float(row[key]) for row in rows] for key in (rows[0] if rows else {})}

    history = columns(stage_dir / "train" / "history.csv")
    history.pop("epoch", None)
    figures = {
        "learning_curves.png": learning_curves(history),
        **test_figures(columns(stage_dir / "evaluate" / "predictions.csv"),
                       getattr(get_class(cfg.model._target_), "class_names", ()),
                       cfg.data.get("target", "value")),
    }
    out = stage_dir / "plots"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, figure in figures.items():
        figure.savefig(out / name, dpi=110)
        plt.close(figure)
        written.append(out / name)
    return written
