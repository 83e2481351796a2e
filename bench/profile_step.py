"""`python bench/profile_step.py [--task market_regressor] [--epochs 100]`: where one training
step's time goes, in the hand-written loop and in `modelyard train` (MLflow off), side by side.

py-spy samples both processes from outside (`--nonblocking`: the process is never paused);
every sample taken inside a training step is put in one category, and a category's share of
the samples times the step's measured wall time gives microseconds per step.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from run import step_rate  # noqa: E402  the benchmark's own steady-state rate

RATE = 200  # samples per second: py-spy shares the 2 cores with the process it samples

# Whole calls whose own torch work counts as theirs, wherever they sit in the stack.
OWNERS = [
    ("progress bar", r"rich_progress|\(rich/"),
    ("metrics (torchmetrics)", r"\(torchmetrics/"),
    ("self.log bookkeeping", r"LightningModule\.log(_dict)? |/logger_connector/"),
    ("data loading", r"_DataFetcher|\(torch/utils/data/|train_dataloader"),
    ("augmentation", r"random_affine|on_after_batch_transfer"),
]
# Otherwise the innermost of these frames decides (so work inside Lightning's optimizer
# closure, which runs inside `optimizer.step`, is not counted as the optimizer's).
LEAVES = [
    ("backward", r"^backward \(torch/|_engine_run_backward|Tensor\.backward"),
    ("forward + loss", r"\.forward \(|\.loss \(|\(torch/nn/"),
    ("zero_grad", r"zero_grad"),
    ("lr schedule", r"LRScheduler\.step|OneCycleLR|CosineAnnealingLR|get_lr"),
    ("Lightning: optimizer closure", r"[Cc]losure|\(lightning/pytorch/loops/optimization/"),
    ("optimizer math", r"\(torch/optim/"),
]
STEP_FRAME = {"raw": r"train_steps \(plain_loop\.py", "modelyard": r"_TrainingEpochLoop\.advance"}


def category(stack: str) -> str:
    owner = next((name for name, rx in OWNERS if re.search(rx, stack)), None)
    if owner:
        return owner
    for frame in reversed(stack.split(";")):
        leaf = next((name for name, rx in LEAVES if re.search(rx, frame)), None)
        if leaf:
            return leaf
    return "Lightning: loop and hooks" if "(lightning/" in stack else "other"


def shares(raw_profile: Path, variant: str) -> Counter:
    counts: Counter = Counter()
    for line in raw_profile.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if re.search(STEP_FRAME[variant], stack) and "batches (plain_loop.py" not in stack:
            counts[category(stack)] += int(count)
    return counts


def sampled(command: list[str], out: Path) -> None:
    spy = [str(Path(sys.executable).parent / "py-spy"), "record", "--nonblocking", "--rate",
           str(RATE), "--format", "raw", "--output", str(out), "--"]
    done = subprocess.run(spy + command, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": f"{BENCH}{os.pathsep}"
                                                           f"{os.environ.get('PYTHONPATH', '')}"})
    if done.returncode != 0:
        raise SystemExit(f"profiling failed:\n{done.stderr[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="market_regressor")
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--keep", type=Path, help="keep py-spy's raw stacks in this directory")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="modelyard-profile-") as tmp:
        tmp_path = options.keep or Path(tmp)
        tmp_path.mkdir(parents=True, exist_ok=True)
        timing = tmp_path / "timer.json"
        raw_script = (
            "import json, sys; from plain_loop import train_steps; "
            "from modelyard.config import compose; "
            f"cfg = compose('train', ['experiment={options.task}', 'paths.output_dir=/unused']); "
            f"starts = train_steps(cfg, {options.epochs} * 20); "
            f"open({str(tmp_path / 'raw.json')!r}, 'w').write(json.dumps(starts))"
        )
        sampled([sys.executable, "-c", raw_script], tmp_path / "raw.txt")
        sampled([sys.executable, "-m", "modelyard", "train", f"experiment={options.task}",
                 "logger=none", "registry.register=false", f"trainer.max_epochs={options.epochs}",
                 "+trainer.limit_train_batches=20", "+trainer.limit_val_batches=1",
                 "+trainer.limit_test_batches=1", f"callbacks.early_stopping.patience={10**6}",
                 f"paths.output_root={tmp_path}/outputs",
                 "+callbacks.bench_timer._target_=step_timer.StepTimer",
                 f"+callbacks.bench_timer.out={timing}"], tmp_path / "modelyard.txt")
        per_step = {"raw": 1 / step_rate(json.loads((tmp_path / "raw.json").read_text())),
                    "modelyard": 1 / step_rate(json.loads(timing.read_text())["step_starts"])}
        counts = {v: shares(tmp_path / f"{v}.txt", v) for v in per_step}

    def micros(variant: str, name: str) -> float:
        total = sum(counts[variant].values())
        return 1e6 * per_step[variant] * counts[variant][name] / total if total else 0.0

    names = sorted(set(counts["raw"]) | set(counts["modelyard"]),
                   key=lambda n: -micros("modelyard", n))
    print(f"{options.task}: microseconds per training step (py-spy, {RATE} Hz)")
    print(f"{'':32} {'hand-written':>12} {'modelyard':>10}")
    for name in names:
        print(f"{name:32} {micros('raw', name):12.0f} {micros('modelyard', name):10.0f}")
    print(f"{'whole step (measured)':32} {1e6 * per_step['raw']:12.0f} "
          f"{1e6 * per_step['modelyard']:10.0f}")


if __name__ == "__main__":
    main()
