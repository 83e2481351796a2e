"""`python bench/run.py [--quick]`: what modelyard costs next to hand-written PyTorch.

Everything is measured side by side in one run, several repeats interleaved, medians kept:
these machines are shared and noisy, so the figures that matter are ratios. Prints a table and
writes bench/results.json (keys stable from run to run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from modelyard import tasks  # noqa: E402
from modelyard.config import compose  # noqa: E402

# Every task is benchmarked (conf/experiment/); these are the shipped ones' own settings:
# (epochs, batches) per timed run, and a reference figure where none of the task's baselines
# is the fair comparison (a classic CNN on full MNIST)
SHAPES = {"market_regressor": (3, 20)}
REFERENCES = {"mnist_cnn": 0.9861}
STRONGEST = {"sentiment_lstm": "nbsvm"}  # the baseline to show, else the policy's
WARMUP_STEPS = 5


def step_rate(starts: list[float]) -> float:
    """Steady-state steps/s: the median step interval after warm-up (epoch ends excluded)."""
    steady = starts[WARMUP_STEPS:]
    intervals = [b - a for a, b in zip(steady, steady[1:], strict=False)]
    return 1.0 / statistics.median(intervals)


def task_config(task: str, extra: list[str] | None = None):
    return compose("train", [f"experiment={task}", "paths.output_dir=/unused", *(extra or [])])


def modelyard_run(task: str, tmp: Path, tag: str, tracked: bool, log_every_step: bool = False,
                  shape: tuple[int, int] = (1, 50)) -> dict[str, float]:
    """`modelyard train` for a few steps, timed from inside by bench/step_timer.py."""
    epochs, batches = shape
    out = tmp / f"{task}-{tag}.json"
    args = [sys.executable, "-m", "modelyard", "train", f"experiment={task}",
            f"trainer.max_epochs={epochs}", f"+trainer.limit_train_batches={batches}",
            "+trainer.limit_val_batches=2", "+trainer.limit_test_batches=1",
            "trainer.num_sanity_val_steps=0",
            f"paths.output_root={tmp}/outputs", "registry.register=false",
            "+callbacks.bench_timer._target_=step_timer.StepTimer",
            f"+callbacks.bench_timer.out={out}"]
    args += ["trainer.log_every_n_steps=1", "callbacks.lr_monitor.logging_interval=step"] \
        if log_every_step else []
    args += [] if tracked else ["logger=none"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(BENCH), str(ROOT / "src")]),
           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp}/mlflow.db", "MLFLOW_DISABLE_TELEMETRY": "true"}
    launched = time.time()
    done = subprocess.run(args, env=env, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"modelyard train failed:\n{done.stderr[-3000:]}")
    timing = json.loads(out.read_text())
    return {"steps_per_s": step_rate(timing["step_starts"]),
            "startup_s": timing["step_starts"][0] - launched,
            "epoch_s": statistics.median(timing["epoch_seconds"])}


def import_floor_s() -> float:
    """What no training command can avoid before its first step: a fresh interpreter
    importing torch, Lightning, MLflow's tracking store and Hydra."""
    command = [sys.executable, "-c", "import torch, lightning, hydra, mlflow; "
               "from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore"]
    launched = time.time()
    subprocess.run(command, check=True, env=tool_env())
    return time.time() - launched


def plain_run(task: str, steps: int) -> dict[str, float]:
    from plain_loop import train_steps

    return {"steps_per_s": step_rate(train_steps(task_config(task), steps))}


def bare_lightning_run(task: str, steps: int) -> dict[str, float]:
    from plain_loop import bare_lightning_steps

    return {"steps_per_s": step_rate(bare_lightning_steps(task_config(task), steps))}


def overhead(task: str, repeats: int, shape: tuple[int, int], tmp: Path) -> dict[str, float]:
    runs: dict[str, list[dict[str, float]]] = {"raw": [], "bare": [], "untracked": [],
                                               "tracked": [], "every_step": [], "floor": []}
    for repeat in range(repeats):  # interleaved, so a noisy minute hits every variant
        runs["floor"].append({"startup_s": import_floor_s()})
        runs["raw"].append(plain_run(task, shape[0] * shape[1]))
        runs["bare"].append(bare_lightning_run(task, shape[0] * shape[1]))
        runs["untracked"].append(modelyard_run(task, tmp, f"u{repeat}", False, shape=shape))
        runs["tracked"].append(modelyard_run(task, tmp, f"t{repeat}", True, shape=shape))
        runs["every_step"].append(modelyard_run(task, tmp, f"s{repeat}", True, True, shape))

    def median(variant: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[variant])

    def paired(top: str, bottom: str, key: str) -> float:
        """Median over repeats of top/bottom within a repeat: a noisy minute hits both."""
        return statistics.median(t[key] / b[key] for t, b in zip(runs[top], runs[bottom],
                                                                 strict=True))

    return {
        "raw_steps_per_s": median("raw", "steps_per_s"),
        "untracked_steps_per_s": median("untracked", "steps_per_s"),
        "tracked_steps_per_s": median("tracked", "steps_per_s"),
        "ratio_bare_lightning": paired("raw", "bare", "steps_per_s"),
        "ratio_untracked": paired("raw", "untracked", "steps_per_s"),
        "ratio_tracked": paired("raw", "tracked", "steps_per_s"),
        "startup_s": median("tracked", "startup_s"),
        "startup_floor_s": median("floor", "startup_s"),
        "startup_over_floor_s": statistics.median(
            t["startup_s"] - f["startup_s"] for t, f in zip(runs["tracked"], runs["floor"],
                                                            strict=True)),
        "tracking_overhead_pct": 100 * (paired("every_step", "untracked", "epoch_s") - 1),
    }


def data_path(task: str, seconds: float, model_steps_per_s: float) -> dict[str, float]:
    from plain_loop import loader_batches_per_s

    loader = loader_batches_per_s(task_config(task), seconds)
    return {"loader_batches_per_s": loader, "model_steps_per_s": model_steps_per_s,
            "headroom": loader / model_steps_per_s}


def quality(task: str) -> dict[str, object]:
    from modelyard.registry.policy import METRICS

    policy = task_config(task).registry.policy
    metric = METRICS[policy.metric][2] or "test_loss"
    named = STRONGEST.get(task, policy.baseline)
    baseline = REFERENCES.get(task, f"baseline_{named}_{metric}" if named else None)
    metrics_file = ROOT / "metrics" / f"{task}.json"
    if not metrics_file.exists():
        return {"metric": metric, "value": None, "baseline": None}
    values = json.loads(metrics_file.read_text())
    reference = values.get(baseline) if isinstance(baseline, str) else baseline
    return {"metric": metric, "value": values[metric], "baseline": reference}


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_ms": 1000 * statistics.median(ordered),
            "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]}


def timed(call, repeats: int) -> list[float]:
    call()  # warm-up
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def serving(task: str, repeats: int) -> dict[str, float] | None:
    """pyfunc predict of the champion vs the raw module's forward, batch of 1 and of 256."""
    import mlflow
    from hydra.utils import get_class

    from modelyard.training import build

    name = str(task_config(task).registry.model)
    checkpoint = ROOT / "pipeline" / task / "train" / "checkpoints" / "best.ckpt"
    mlflow.set_tracking_uri(f"sqlite:///{ROOT}/mlflow.db")
    try:
        pyfunc = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    except mlflow.exceptions.MlflowException as err:  # e.g. no champion yet: `make run`
        print(f"  no serving figures for {name}: {str(err).splitlines()[0][:200]}")
        return None
    cfg = task_config(task, ["data.batch_size=256"])
    module = get_class(cfg.model._target_).load_from_checkpoint(checkpoint, map_location="cpu")
    module.eval()
    datamodule = build.datamodule(cfg)
    inputs, _ = datamodule.raw_split("test")  # as a client sends them
    tensors, _ = next(iter(datamodule.test_dataloader()))
    result = {}
    for batch in (1, 256):
        rows = inputs.iloc[:batch] if hasattr(inputs, "iloc") else inputs[:batch]
        head = tensors[:batch]
        with torch.no_grad():
            raw = percentiles(timed(lambda head=head: module(head), repeats))
        served = percentiles(timed(lambda rows=rows: pyfunc.predict(rows), repeats))
        suffix = "" if batch == 1 else "_b256"
        result |= {f"p50_ms{suffix}": served["p50_ms"], f"p99_ms{suffix}": served["p99_ms"],
                   f"raw_p50_ms{suffix}": raw["p50_ms"], f"raw_p99_ms{suffix}": raw["p99_ms"]}
    return result


def tool_env() -> dict[str, str]:
    """The venv's tools (dvc, modelyard) first on PATH, DVC quiet."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "DVC_NO_ANALYTICS": "1"}


def command_seconds(command: list[str], repeats: int) -> float:
    return statistics.median(timed(lambda: subprocess.run(command, cwd=ROOT, env=tool_env(),
                                                          capture_output=True), repeats))


def pipeline(repeats: int) -> dict[str, object]:
    status = subprocess.run(["dvc", "status", "--json"], cwd=ROOT, env=tool_env(),
                            capture_output=True, text=True)
    up_to_date = status.returncode == 0 and json.loads(status.stdout or "{}") == {}
    # a stale pipeline would retrain for minutes: time only the check then, and say so
    noop = ["dvc", "repro"] if up_to_date else ["dvc", "status"]
    return {"dvc_noop_s": command_seconds(noop, repeats), "dvc_noop_command": " ".join(noop),
            "cli_help_s": command_seconds([sys.executable, "-m", "modelyard", "--help"],
                                          repeats)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repeat, fewer steps (<3 min)")
    options = parser.parse_args()
    repeats = 1 if options.quick else 3
    console = Console(width=140)
    results: dict[str, dict] = {"overhead": {}, "tracking": {}, "data": {}, "quality": {},
                                "serving": {}}
    with tempfile.TemporaryDirectory(prefix="modelyard-bench-") as tmp:
        for task in tasks.names():
            shape = SHAPES.get(task, (1, 50))
            if options.quick:
                shape = (shape[0], min(shape[1], 25))
            console.print(f"[bold]{task}[/]: raw loop, modelyard untracked, tracked, "
                          f"tracked + every-step logging x{repeats}")
            figures = overhead(task, repeats, shape, Path(tmp))
            results["overhead"][task] = {k: figures[k] for k in (
                "ratio_tracked", "ratio_untracked", "ratio_bare_lightning", "startup_s",
                "startup_floor_s", "startup_over_floor_s",
                "raw_steps_per_s",
                "untracked_steps_per_s", "tracked_steps_per_s")}
            results["tracking"][task] = {"overhead_pct": figures["tracking_overhead_pct"]}
            results["data"][task] = data_path(task, 1.5 if options.quick else 4.0,
                                              figures["raw_steps_per_s"])
            results["quality"][task] = quality(task)
            console.print(f"  {task}: serving latency")
            results["serving"][task] = serving(task, 30 if options.quick else 200)
    results["pipeline"] = pipeline(2 if options.quick else 5)
    results["machine"] = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
                          "cpus": os.cpu_count(), "platform": platform.platform(),
                          "python": platform.python_version(), "torch": torch.__version__,
                          "torch_threads": torch.get_num_threads(), "quick": options.quick}
    (BENCH / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    console.print(table(results))


def table(results: dict) -> Table:
    machine = results["machine"]
    out = Table(title=f"modelyard bench {machine['date'][:10]}: {machine['cpus']} CPUs, "
                      f"torch {machine['torch']} ({machine['torch_threads']} threads)")
    for column in ("task", "raw steps/s", "time ratio bare Lightning", "time ratio untracked",
                   "time ratio tracked (≤1.05)",
                   "start-up s (imports alone; above them)", "per-step logging % (≤3)",
                   "loader/model", "test metric",
                   "baseline", "pyfunc p50/p99 ms (b=1)", "raw forward p50 ms"):
        out.add_column(column)
    for task in results["overhead"]:
        o, q, s = results["overhead"][task], results["quality"][task], results["serving"][task]
        out.add_row(
            task, f"{o['raw_steps_per_s']:.1f}", f"{o['ratio_bare_lightning']:.3f}",
            f"{o['ratio_untracked']:.3f}",
            f"{o['ratio_tracked']:.3f}",
            f"{o['startup_s']:.1f} ({o['startup_floor_s']:.1f}; {o['startup_over_floor_s']:.1f})",
            f"{results['tracking'][task]['overhead_pct']:+.1f}",
            f"{results['data'][task]['headroom']:.1f}x",
            "—" if q["value"] is None else f"{q['metric']} {q['value']:.4f}",
            "—" if q["baseline"] is None else f"{q['baseline']:.4f}",
            "—" if s is None else f"{s['p50_ms']:.1f} / {s['p99_ms']:.1f}",
            "—" if s is None else f"{s['raw_p50_ms']:.2f}",
        )
    p = results["pipeline"]
    out.caption = (f"{p['dvc_noop_command']} (no-op): {p['dvc_noop_s']:.2f} s; "
                   f"modelyard --help: {p['cli_help_s']:.2f} s; time ratio = platform time "
                   f"per step / hand-written loop's")
    return out


if __name__ == "__main__":
    main()
