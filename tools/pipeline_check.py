"""`make pipeline`'s last check: after `dvc repro` in a clean checkout, does the pipeline
reproduce what is committed? Passes when git has nothing to report (every output byte for
byte); otherwise it says which of three things happened:

- the committed dvc.lock does not describe this checkout: a stage's command, params or
  code/config dependency differs (a lock not re-made after a change), or a file no stage
  writes changed. Fails.
- the lock describes it, and the committed models were made on another kind of CPU
  (pipeline/<task>/cpu_kind.json, tools/cpu_kind.py): MKL and oneDNN choose kernels by instruction
  set, and a training carries the last float digits on (between two kinds the same CNN
  training ended at test accuracy 0.988 and 0.977). Passes when no test metric moved more
  than `--cross-cpu-tolerance`.
- the lock describes it, the models were made on this kind of CPU, yet outputs differ. Fails
  unless every metric moved no more than `--tolerance` (default 0: byte for byte).

    python tools/pipeline_check.py [--tolerance 0] [--cross-cpu-tolerance 0.02]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path

import yaml
from cpu_kind import cpu_kind, describe

from modelyard.errors import exit_on_user_error
from modelyard.report.collect import dvc_json, git

CPU_KIND = "cpu_kind.json"  # pipeline/<task>/cpu_kind.json, one per pipeline task

Lock = dict[str, dict]


def stage_problems(committed: Lock, reproduced: Lock) -> list[str]:
    """What differs between two dvc.lock files' stages apart from what the pipeline writes:
    commands, params, and the dependencies no stage makes (code, config, raw inputs)."""
    problems = [f"stage {stage}: in one dvc.lock only"
                for stage in sorted(set(committed) ^ set(reproduced))]
    made = outputs(committed) | outputs(reproduced)
    for stage in sorted(set(committed) & set(reproduced)):
        before, after = committed[stage], reproduced[stage]
        if before.get("cmd") != after.get("cmd"):
            problems.append(f"stage {stage}: its command differs from the committed one")
        if before.get("params") != after.get("params"):
            problems.append(f"stage {stage}: its params differ from the committed ones")
        deps = [{d["path"]: d.get("md5") for d in lock.get("deps", [])
                 if not inside(d["path"], made)} for lock in (before, after)]
        problems += [f"stage {stage}: dependency {path} differs from the committed one"
                     for path in sorted(set(deps[0]) | set(deps[1]))
                     if deps[0].get(path) != deps[1].get(path)]
    return problems


def outputs(lock: Lock) -> set[str]:
    return {out["path"].rstrip("/") for stage in lock.values() for out in stage.get("outs", [])}


def inside(path: str, outs: set[str]) -> bool:
    path = path.rstrip("/")
    return any(path == out or path.startswith(f"{out}/") for out in outs)


def stray_files(changed: Iterable[str], outs: set[str]) -> list[str]:
    """Changed paths that are neither dvc.lock nor (inside) an output of a stage."""
    return [f"{path}: changed, and no stage writes it" for path in changed
            if path != "dvc.lock" and not inside(path, outs)]


def metric_problems(diff: dict[str, dict[str, dict]], tolerance: float) -> list[str]:
    """`dvc metrics diff --json` entries that are new, gone, or moved by more than tolerance."""
    problems = []
    for file, metrics in sorted(diff.items()):
        for name, change in sorted(metrics.items()):
            moved = change.get("diff")
            if not isinstance(moved, int | float):
                problems.append(f"{file}: {name} is new or gone ({change})")
            elif abs(moved) > tolerance:
                problems.append(f"{file}: {name} moved {change['old']:.6g} -> {change['new']:.6g}"
                                f", more than the tolerance {tolerance:g}")
    return problems


def largest_change(diff: dict[str, dict[str, dict]]) -> float:
    return max((abs(c["diff"]) for m in diff.values() for c in m.values()
                if isinstance(c.get("diff"), int | float)), default=0.0)


def changed_files(root: Path) -> list[str]:
    """Tracked files that differ from HEAD, and untracked ones git does not ignore."""
    return [*git(root, "diff", "--name-only", "HEAD").splitlines(),
            *git(root, "ls-files", "--others", "--exclude-standard").splitlines()]


def committed_cpu_kinds(root: Path) -> list[dict]:
    """The kinds of CPU that made the committed models (one file per task)."""
    files = [f for f in git(root, "ls-tree", "-r", "--name-only", "HEAD", "pipeline").split()
             if f.count("/") == 2 and f.endswith(f"/{CPU_KIND}")]
    return [json.loads(git(root, "show", f"HEAD:{f}")) for f in files]


def check(root: Path, tolerance: float, cross_cpu_tolerance: float) -> int:
    changed = changed_files(root)
    if not changed:
        print("pipeline reproduced byte for byte: git has nothing to report")
        return 0
    committed = yaml.safe_load(git(root, "show", "HEAD:dvc.lock"))["stages"]
    reproduced = yaml.safe_load((root / "dvc.lock").read_text())["stages"]
    stale = (stage_problems(committed, reproduced)
             + stray_files(changed, outputs(committed) | outputs(reproduced)))
    if stale:
        print("\n".join(stale), file=sys.stderr)
        print("the committed dvc.lock does not describe this checkout: re-run the pipeline "
              "and commit dvc.lock with its outputs", file=sys.stderr)
        return 1
    diff = dvc_json(root, "metrics", "diff", "HEAD")
    here = cpu_kind()
    made_on = next((kind for kind in committed_cpu_kinds(root) if kind != here), None)
    other_cpu = made_on is not None
    if other_cpu:
        print(f"committed models were made on {describe(made_on)}; this machine is "
              f"{describe(here)}: other bytes are expected, test metrics may move up to "
              f"{cross_cpu_tolerance:g}")
        tolerance = max(tolerance, cross_cpu_tolerance)
    moved = metric_problems(diff, tolerance)
    if moved or not tolerance:
        print("\n".join(moved or [f"{len(changed)} outputs differ in their bytes; no test "
                                  "metric moved"]), file=sys.stderr)
        cause = ("more than another CPU explains: a training that is fragile or not "
                 "deterministic, or a change the lock does not see (a package version)"
                 if other_cpu else
                 "this machine computes differently from the one that made the lock, or the "
                 "training is not deterministic")
        print("the committed dvc.lock describes this checkout (same commands, params, code and "
              f"config), yet its outputs differ: {cause}. Re-run the pipeline and commit "
              "dvc.lock with its outputs, or accept such changes: make pipeline "
              "METRICS_TOL=<max>", file=sys.stderr)
        return 1
    print(f"{len(changed)} committed outputs differ in their bytes, but not in what made them "
          f"and not in any test metric beyond {tolerance:g} (largest change "
          f"{largest_change(diff):.2g})")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tolerance", type=float, default=0.0,
                        help="largest change of a test metric to accept (default 0: none)")
    parser.add_argument("--cross-cpu-tolerance", type=float, default=0.02,
                        help="the same, when the committed models were made on another kind "
                             "of CPU (default 0.02)")
    args = parser.parse_args()
    with exit_on_user_error():  # git or dvc refusing: one line, exit 2
        return check(Path.cwd(), args.tolerance, args.cross_cpu_tolerance)


if __name__ == "__main__":
    sys.exit(main())
