"""`python bench/trainings.py`: the three default trainings, one after another, as a user starts
them (`modelyard train experiment=<task>`, MLflow off, start-up included), against the budget
of 10 minutes for all three on 2 cores; and, side by side in the same run, the sentiment LSTM
without its bag of n-grams (`data.ngram_order=0`): what the bag costs. Writes
bench/trainings.json.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
MODELYARD = Path(sys.executable).with_name("modelyard")
BUDGET_S = 600.0
RUNS = {
    "market_regressor": [],
    "mnist_cnn": [],
    "sentiment_lstm": [],
    "sentiment_lstm_without_bag": ["data.ngram_order=0"],
}


def timed_training(name: str, overrides: list[str], output_root: Path) -> float:
    experiment = name.removesuffix("_without_bag")
    command = [str(MODELYARD), "train", f"experiment={experiment}", "logger=none",
               f"paths.output_root={output_root}", *overrides]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=BENCH.parent)
    return time.perf_counter() - start


def main() -> None:
    seconds = {}
    with tempfile.TemporaryDirectory(prefix="modelyard-trainings-") as tmp:
        for name, overrides in RUNS.items():
            seconds[name] = timed_training(name, overrides, Path(tmp))
            print(f"{name:28s} {seconds[name]:6.1f} s", flush=True)
    defaults = sum(seconds[task] for task in ("market_regressor", "mnist_cnn", "sentiment_lstm"))
    results = {
        "seconds": seconds,
        "three_defaults_s": defaults,
        "ratio_to_budget": defaults / BUDGET_S,
        "ratio_lstm_bag": seconds["sentiment_lstm"] / seconds["sentiment_lstm_without_bag"],
        "machine": {"date": datetime.now(UTC).isoformat(timespec="seconds"),
                    "cpus": os.cpu_count(), "platform": platform.platform()},
    }
    print(f"three default trainings: {defaults:.0f} s = {results['ratio_to_budget']:.2f} x the "
          f"{BUDGET_S:.0f} s budget; the LSTM with its bag of n-grams takes "
          f"{results['ratio_lstm_bag']:.2f} x as long as without")
    (BENCH / "trainings.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
