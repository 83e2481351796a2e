"""Figures a person would rather look at than read. Pure matplotlib (Agg), no tracking."""

from __future__ import annotations

from collections.abc import Sequence

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
    fig, ax = plt.subplots(figsize=(1 + 0.55 * len(labels), 0.8 + 0.5 * len(labels)))
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
