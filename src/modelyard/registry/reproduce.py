"""`modelyard models reproduce <name>/<version>`: rebuild a registered version from its lineage
and compare.

- code: a temporary git worktree at the version's commit (refused if it was trained from
  uncommitted changes: that code exists nowhere);
- data: the same bytes, checked out by DVC from this project's cache when the version used the
  project's `data/`, and compared by manifest sha256 either way;
- config: the source run's own command-line overrides, with outputs sent to the worktree.

The retraining logs to a throw-away MLflow store, so the registry gains only the verdict tags.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path

from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from modelyard import project
from modelyard.errors import ModelyardError, one_line
from modelyard.registry.contract import Limits
from modelyard.tracking import lineage

LINEAGE_TAGS = ("git.sha", "data.manifest_sha256", "dvc.data_md5", "seed", "torch.version",
                "lightning.version")
# Overrides that only say where outputs go; the reproduction chooses its own.
OUTPUT_OVERRIDES = ("paths.output_root=", "hydra.run.dir=", "registry.register=")
# Config keys that name places, not choices: they legitimately differ between the two runs.
PLACE_KEYS = ("paths.", "logger.", "hydra", "registry.register")
# Run params that are not config: the pyfunc's model_config (registry/register.py), which
# MLflow logs as params of the run a model is logged into, the serving limits included.
NOT_CONFIG = ("model_class", "adapter", "weights_sha256", *(f.name for f in fields(Limits)))


@dataclass
class Reproduction:
    name: str
    version: str
    lineage: list[tuple[str, str, str]]           # (tag, original, reproduced)
    metrics: list[tuple[str, float, float]]       # (metric, original, reproduced)
    config_differences: list[str] = field(default_factory=list)

    @property
    def max_abs_diff(self) -> float:
        return max((abs(a - b) for _, a, b in self.metrics), default=0.0)

    def matches(self, tolerance: float) -> bool:
        return (bool(self.metrics) and self.max_abs_diff <= tolerance
                and not self.config_differences and all(a == b for _, a, b in self.lineage))


def find_version(client: MlflowClient, ref: str) -> ModelVersion:
    """`name/version` or `name@alias`."""
    try:
        if "@" in ref:
            name, alias = ref.split("@", 1)
            return client.get_model_version_by_alias(name, alias)
        name, _, number = ref.rpartition("/")
        if not name or not number.isdigit():
            raise ModelyardError(f"expected <name>/<version> or <name>@<alias>, got {ref!r}")
        return client.get_model_version(name, number)
    except MlflowException as err:
        raise ModelyardError(f"no registered version {ref}: {one_line(err)}") from None


def train_overrides(command: str) -> list[str]:
    """The overrides of the recorded `modelyard train ...` command line."""
    words = shlex.split(command)
    words = [*words[0].split(), *words[1:]] if words else []  # argv[0] is "modelyard train"
    if "train" not in words:
        raise ModelyardError(f"the source run was not made by `modelyard train`: {command}")
    args = words[words.index("train") + 1:]
    return [a for a in args if not a.startswith(OUTPUT_OVERRIDES)]


def _git(*args: str) -> str:
    output = lineage.git(project.root(), *args)
    if output is None:
        raise ModelyardError(f"git {args[0]} failed in {project.root()}")
    return output


@contextmanager
def worktree_at(sha: str, parent: Path) -> Iterator[Path]:
    target = parent / "code"
    _git("worktree", "add", "--detach", "--quiet", str(target), sha)
    try:
        yield target
    finally:
        _git("worktree", "remove", "--force", str(target))


def checkout_project_data(worktree: Path, data_path: str) -> None:
    """Materialise the data version the commit's dvc.lock names, from this project's cache."""
    relative = Path(data_path)
    if relative.is_absolute() or not (worktree / "dvc.lock").exists():
        return  # data from outside the project: used in place, checked by its manifest
    dvc = [sys.executable, "-m", "dvc"]
    cache = project.root() / ".dvc" / "cache"
    subprocess.run([*dvc, "config", "--local", "cache.dir", str(cache)],
                   cwd=worktree, check=True, capture_output=True)
    done = subprocess.run([*dvc, "checkout", str(relative)], cwd=worktree, capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise ModelyardError(
            f"data version of {relative} is not in the DVC cache; run `dvc pull` first "
            f"({done.stderr.strip().splitlines()[-1] if done.stderr.strip() else 'dvc failed'})"
        )


def _comparable(params: dict[str, str]) -> dict[str, str]:
    """Params with this run's own directories spelled as placeholders, places left out."""
    named = ("output_dir", "data_dir", "root_dir")
    places = sorted(((params[f"paths.{d}"], f"<{d}>") for d in named if params.get(f"paths.{d}")),
                    key=lambda place: -len(place[0]))  # longest first: output_dir is in root_dir

    def spelled(value: str) -> str:
        for path, placeholder in places:
            value = value.replace(path, placeholder)
        return value

    return {k: spelled(v) for k, v in params.items()
            if not k.startswith(PLACE_KEYS) and k not in NOT_CONFIG}


def retrain(source: Run, sha: str, workdir: Path) -> Run:
    """Train again from the worktree's code into a throw-away store; return that run."""
    with worktree_at(sha, workdir) as code:
        checkout_project_data(code, source.data.tags.get("data.path", ""))
        store = f"sqlite:///{workdir}/mlflow.db"
        command = [sys.executable, "-m", "modelyard", "train",
                   *train_overrides(source.data.tags["command"]),
                   f"paths.output_root={workdir}/outputs", "registry.register=false"]
        env = {k: v for k, v in os.environ.items()  # DVC's own, if `reproduce` runs in a stage
               if not k.startswith("DVC_") and k != project.ROOT_ENV}
        env.update({"PYTHONPATH": str(code / "src"), "MLFLOW_TRACKING_URI": store})
        print(f"retraining at {sha[:12]}: {shlex.join(command[3:])}", flush=True)
        if subprocess.run(command, cwd=code, env=env).returncode != 0:
            raise ModelyardError("the retraining failed (see its output above)")
    client = MlflowClient(store)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    return runs[0]


def reproduce(client: MlflowClient, ref: str, record: bool = True) -> Reproduction:
    version = find_version(client, ref)
    tags = version.tags
    if tags.get("git.dirty") != "false":
        raise ModelyardError(
            f"{version.name} v{version.version} was trained from uncommitted changes "
            f"(git.dirty={tags.get('git.dirty')}) at {tags.get('git.sha', '?')[:12]}: "
            f"that code cannot be rebuilt"
        )
    source = client.get_run(tags["source_run"])
    with tempfile.TemporaryDirectory(prefix="modelyard-reproduce-") as tmp:
        again = retrain(source, tags["git.sha"], Path(tmp))
    original, repeated = _comparable(source.data.params), _comparable(again.data.params)
    result = Reproduction(
        name=version.name,
        version=str(version.version),
        lineage=[(t, source.data.tags.get(t, ""), again.data.tags.get(t, ""))
                 for t in LINEAGE_TAGS if t in source.data.tags],
        metrics=[(m, value, again.data.metrics.get(m, float("nan")))
                 for m, value in sorted(source.data.metrics.items()) if m.startswith("test_")],
        config_differences=sorted(k for k in original.keys() | repeated.keys()
                                  if original.get(k) != repeated.get(k)),
    )
    if record:
        verdict = {"time": datetime.now(UTC).isoformat(timespec="seconds"),
                   "max_abs_diff": f"{result.max_abs_diff:.3g}"}
        for key, value in verdict.items():
            client.set_model_version_tag(version.name, version.version, f"reproduce.{key}", value)
    return result
