"""What a job prints and leaves behind in its output directory."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table


def write_metrics(path: Path, metrics: Mapping[str, float]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(sorted(metrics.items())), indent=2) + "\n")


def write_table(path: Path, columns: Mapping[str, Sequence[object]]) -> None:
    """Equal-length columns as CSV, the format DVC plots read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    names = list(columns)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(names)
        writer.writerows(zip(*(columns[n] for n in names), strict=True))


def print_metrics(title: str, metrics: Mapping[str, float], footer: str = "") -> None:
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in sorted(metrics.items()):
        table.add_row(key, f"{value:.4f}")
    Console().print(table)
    if footer:
        print(footer)  # plain: paths must not be wrapped or restyled
