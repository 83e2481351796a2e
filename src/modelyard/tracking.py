"""MLflow bookkeeping around a run: params, lineage tags, config, figures, checkpoint, status.

Lightning's MLFlowLogger owns the run (rank 0 only); this module adds what it does not
record and makes sure a run never stays RUNNING after a failure.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import yaml
from lightning.pytorch.loggers import MLFlowLogger
from lightning.pytorch.utilities import rank_zero_only
from matplotlib.figure import Figure
from mlflow.entities import Metric, RunTag
from mlflow.environment_variables import MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS
from mlflow.utils.async_logging.run_operations import RunOperations
from omegaconf import DictConfig, OmegaConf

from modelyard.config import PROJECT_ROOT
from modelyard.errors import ModelyardError
from modelyard.uris import check_reachable, without_credentials


def git_state(root: Path = PROJECT_ROOT) -> dict[str, str]:
    def git(*args: str) -> str:
        result = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
        return result.stdout.strip() if result.returncode == 0 else ""

    sha = git("rev-parse", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return {
        "git.sha": sha or "unknown",
        "git.dirty": str(bool(dirty)).lower() if sha else "unknown",
    }


def dvc_data_version(data_path: Path, root: Path) -> str | None:
    """The DVC md5 of a data directory: its out in dvc.lock, else its `<dir>.dvc` file."""
    data_path = data_path.resolve()
    lock = root / "dvc.lock"
    if lock.exists():
        for stage in (yaml.safe_load(lock.read_text()) or {}).get("stages", {}).values():
            for out in stage.get("outs", []):
                if (root / out["path"]).resolve() == data_path:
                    return out.get("md5")
    dvc_file = data_path.with_name(f"{data_path.name}.dvc")
    if dvc_file.exists():
        outs = (yaml.safe_load(dvc_file.read_text()) or {}).get("outs", [])
        return outs[0].get("md5") if outs else None
    return None


def lineage_tags(cfg: DictConfig, data_manifest_sha256: str | None) -> dict[str, str]:
    data_path = Path(cfg.data.path)
    dvc_tags = {"dvc.data_md5": dvc_data_version(data_path, Path(cfg.paths.root_dir))}
    if os.environ.get("DVC_EXP_NAME"):  # set by `dvc exp run`
        dvc_tags["dvc.exp_name"] = os.environ["DVC_EXP_NAME"]
    return {
        **git_state(),
        **{k: v for k, v in dvc_tags.items() if v},
        "data.path": str(cfg.data.path),
        "data.manifest_sha256": data_manifest_sha256 or "none (user data without manifest)",
        "seed": str(cfg.seed),
        "torch.version": metadata.version("torch"),
        "lightning.version": metadata.version("lightning"),
        "modelyard.task": str(cfg.task),
        "command": without_credentials(shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])),
    }


def flat_params(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as dotted keys (Hydra's own section left out)."""
    container = OmegaConf.to_container(cfg, resolve=True)
    container.pop("hydra", None)
    flat: dict[str, Any] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, Mapping) and node:
            for key, value in node.items():
                walk(f"{prefix}.{key}" if prefix else str(key), value)
        else:
            flat[prefix] = node

    walk("", container)
    return {k: without_credentials(v) if isinstance(v, str) else v for k, v in flat.items()}


def resolved_yaml(cfg: DictConfig) -> str:
    """The resolved config as YAML, with credentials removed from any URI in it."""
    return without_credentials(OmegaConf.to_yaml(cfg, resolve=True))


class TrackedRun:
    """Writes to the logger's run; with no logger (logger=none) every call is a no-op."""

    def __init__(self, logger: MLFlowLogger | None, output_dir: Path) -> None:
        self.logger = logger
        self.output_dir = output_dir

    @property
    def run_id(self) -> str | None:
        return self.logger.run_id if self.logger else None

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        if self.logger and metrics:
            self.logger.log_metrics(dict(metrics))
            if isinstance(self.logger, ResumableMLFlowLogger):
                self.logger.flush()

    def log_figures(self, figures: Mapping[str, Figure]) -> None:
        """Save each figure under <output_dir>/plots and, when tracking, as an artifact."""
        plot_dir = self.output_dir / "plots"
        plot_dir.mkdir(parents=True, exist_ok=True)
        for name, figure in figures.items():
            figure.savefig(plot_dir / name, dpi=110)
            if self.logger:
                self.logger.experiment.log_artifact(self.run_id, str(plot_dir / name), "plots")
            plt.close(figure)

    def log_json(self, payload: Mapping[str, Any], artifact_file: str) -> None:
        if self.logger:
            self.logger.experiment.log_dict(self.run_id, dict(payload), artifact_file)

    def log_artifact(self, path: str | Path, artifact_dir: str) -> None:
        if self.logger and path:
            self.logger.experiment.log_artifact(self.run_id, str(path), artifact_dir)


def _start(logger: MLFlowLogger, tracking_uri: str) -> str:
    """Create the run (Lightning does it lazily), turning store errors into one line."""
    from mlflow.exceptions import MlflowException

    check_reachable(tracking_uri)
    try:
        return logger.run_id
    except (MlflowException, OSError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelyardError(
            f"cannot open MLflow tracking store {without_credentials(tracking_uri)}: "
            f"{first_line}"
        ) from None


class ResumableMLFlowLogger(MLFlowLogger):
    """Lightning's MLflow logger with two additions.

    - Batched, asynchronous metrics: a step only appends its points to a list; every
      `buffer_seconds` the list goes to MLflow as one batch, written by MLflow's background
      thread when `synchronous` is false. One synchronous write per call cost ~4 ms on SQLite,
      more than a whole regressor step (bench/). `flush()` sends what is left, waits until
      all of it is stored and raises if any was refused; checkpoints, the end of fit and test,
      and the end of the run call it.
    - Continuing a run after a crash, it never logs a metric step twice: the steps between the
      last checkpoint and the crash are replayed by the resumed job, and the points already
      recorded for them are kept instead of duplicated.
    """

    def __init__(self, *args: Any, synchronous: bool = True, buffer_seconds: float = 0.0,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # params and tags stay synchronous: logged once
        self.synchronous, self.buffer_seconds = synchronous, buffer_seconds
        try:  # MLflow parses its own variable only in its logging thread, which a bad value
            MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS.get()  # kills, leaving every wait hanging
        except ValueError as err:
            raise ModelyardError(str(err)) from None
        self._unsent: list[Metric] = []
        self._sent_at = time.monotonic()
        self._pending: list[RunOperations] = []
        self._recorded: set[tuple[str, int]] = set()

    def remember_recorded_steps(self) -> None:
        client, run_id = self.experiment, self.run_id
        for key in client.get_run(run_id).data.metrics:
            self._recorded.update((key, m.step) for m in client.get_metric_history(run_id, key))

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        step, timestamp = step or 0, int(time.time() * 1000)
        self._unsent += [Metric(key, float(value), timestamp, step)
                         for key, value in metrics.items() if (key, step) not in self._recorded]
        if time.monotonic() - self._sent_at >= self.buffer_seconds:
            self._send()

    def _send(self) -> None:
        self._sent_at = time.monotonic()
        if self._unsent:
            queued = self.experiment.log_batch(self.run_id, metrics=self._unsent,
                                               synchronous=self.synchronous)
            self._unsent = []
            if queued is not None:
                self._pending.append(queued)

    @rank_zero_only
    def flush(self) -> None:
        """Send every point logged so far, wait until the store has it; raise if refused."""
        self._send()
        pending, self._pending = self._pending, []
        for operations in pending:
            operations.wait()

    @rank_zero_only
    def finalize(self, status: str = "success") -> None:
        if status == "success":  # on a failure the run is ending anyway: keep its own error
            self.flush()
        super().finalize(status)


@contextmanager
def tracked_run(
    logger: MLFlowLogger | None, cfg: DictConfig, tags: Mapping[str, str], output_dir: Path,
    resumed: bool = False,
) -> Iterator[TrackedRun]:
    """Start the run with params, tags and config.yaml; end it FINISHED, FAILED or KILLED.

    `resumed`: the logger continues a run a crashed job left; params it already has stay as
    they were (MLflow forbids changing them), and the config goes to config.resumed.yaml.
    """
    run = TrackedRun(logger, output_dir)
    if logger is None:
        yield run
        return
    _start(logger, cfg.logger.tracking_uri)
    client = logger.experiment
    params = flat_params(cfg)
    if resumed:
        client.update_run(run.run_id, status="RUNNING")
        recorded = client.get_run(run.run_id).data.params
        params = {k: v for k, v in params.items() if k not in recorded}
        if isinstance(logger, ResumableMLFlowLogger):
            logger.remember_recorded_steps()
    logger.log_hyperparams(params)
    client.log_batch(run.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])
    client.log_text(run.run_id, resolved_yaml(cfg),
                    "config.resumed.yaml" if resumed else "config.yaml")
    try:
        yield run
        if isinstance(logger, ResumableMLFlowLogger):
            logger.flush()  # every point stored before the run is called finished
    except KeyboardInterrupt:
        client.set_terminated(run.run_id, "KILLED")
        raise
    except BaseException:
        client.set_terminated(run.run_id, "FAILED")
        raise
    client.set_terminated(run.run_id, "FINISHED")
