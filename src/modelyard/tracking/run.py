"""MLflow bookkeeping around a run: params, lineage tags, config, datasets, figures,
artifacts, status.

Lightning's MLFlowLogger owns the run (rank 0 only); this module adds what it does not
record and makes sure a run never stays RUNNING after a failure.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import MLFlowLogger
from matplotlib.figure import Figure
from mlflow.entities import Run, RunTag
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from modelyard.errors import StoreError, interrupting_signal, one_line
from modelyard.tracking import describe
from modelyard.tracking.logger import ResumableMLFlowLogger
from modelyard.tracking.owner import end_orphaned_runs, owner_tags
from modelyard.tracking.store import without_credentials


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

    def log_figures(self, figures: Mapping[str, Figure]) -> None:
        """Each figure as a `plots/` artifact of the run."""
        import matplotlib.pyplot as plt

        from modelyard import plots

        with tempfile.TemporaryDirectory() as tmp:
            for name, figure in figures.items():
                if self.logger:
                    figure.savefig(Path(tmp) / name, dpi=plots.DPI)
                    self.logger.experiment.log_artifact(self.run_id, str(Path(tmp) / name),
                                                        "plots")
                plt.close(figure)

    def log_datasets(self, datasets: Mapping[str, Any]) -> None:
        """MLflow datasets (mlflow.data.*) by context: train, validation, test."""
        if not self.logger:
            return
        from mlflow.entities import DatasetInput, InputTag

        inputs = [DatasetInput(dataset._to_mlflow_entity(),
                               [InputTag("mlflow.data.context", context)])
                  for context, dataset in datasets.items()]
        self.logger.experiment.log_inputs(self.run_id, datasets=inputs)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        if self.logger and tags:
            self.logger.experiment.log_batch(
                self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_json(self, payload: Mapping[str, Any], artifact_file: str) -> None:
        if self.logger:
            self.logger.experiment.log_dict(self.run_id, dict(payload), artifact_file)

    def log_artifact(self, path: str | Path, artifact_dir: str) -> None:
        if self.logger and path:
            self.logger.experiment.log_artifact(self.run_id, str(path), artifact_dir)


def run_that_trained(client: MlflowClient, task: str, weights: str) -> Run | None:
    """The run in this store that trained these weights (None: they were trained elsewhere)."""
    experiment = client.get_experiment_by_name(task)
    if experiment is None:
        return None
    runs = client.search_runs([experiment.experiment_id], f"tags.weights_sha256 = '{weights}'",
                              order_by=["attributes.start_time ASC"])
    # A RUNNING one finished training (its weights are tagged last) and was killed while
    # registering, which re-opens the run (KILLED once a later command found its process
    # gone): registering it again ends it FINISHED.
    usable = ([r for r in runs if r.info.status == "FINISHED"]
              or [r for r in runs if r.info.status in ("RUNNING", "KILLED")])
    return usable[0] if usable else None


def _start(logger: MLFlowLogger, tracking_uri: str) -> str:
    """Create the run (Lightning does it lazily), turning store errors into one line."""
    from mlflow.exceptions import MlflowException

    try:
        return logger.run_id
    except (MlflowException, OSError) as err:
        raise StoreError(
            f"cannot open MLflow tracking store {without_credentials(tracking_uri)}: "
            f"{one_line(err)}"
        ) from None


@contextmanager
def tracked_run(
    logger: MLFlowLogger | None, cfg: DictConfig, tags: Mapping[str, str], output_dir: Path,
    resumed: bool = False, params: Mapping[str, Any] | None = None,
) -> Iterator[TrackedRun]:
    """Start the run with params, tags and config.yaml; end it FINISHED, FAILED or KILLED.

    `params`: recorded over the config's own (an evaluation records what trained the model).
    `resumed`: the logger continues a run a crashed job left; params it already has stay as
    they were (MLflow forbids changing them), and the config goes to config.resumed.yaml.
    """
    run = TrackedRun(logger, output_dir)
    if logger is None:
        yield run
        return
    _start(logger, cfg.logger.tracking_uri)
    client = logger.experiment
    params = {**flat_params(cfg), **(params or {})}
    if resumed:  # this job's now: claimed before orphans are looked for
        client.log_batch(run.run_id, tags=[RunTag(k, v) for k, v in owner_tags().items()])
        client.update_run(run.run_id, status="RUNNING")
        recorded = client.get_run(run.run_id).data.params
        params = {k: v for k, v in params.items() if k not in recorded}
        if isinstance(logger, ResumableMLFlowLogger):
            logger.remember_recorded_steps()
    end_orphaned_runs(client)
    try:  # from here on a failure ends the run FAILED, never leaves it RUNNING
        try:
            logger.log_hyperparams(params)
            config = resolved_yaml(cfg)
            tags = {**tags, "config_sha256": hashlib.sha256(config.encode()).hexdigest()}
            client.log_text(run.run_id, config,
                            "config.resumed.yaml" if resumed else describe.CONFIG_ARTIFACT)
            if not resumed:  # what the UI shows first: a short tag and a description
                tags["config"] = describe.config_uri(run.run_id)
                tags[describe.NOTE] = describe.run_description(
                    cfg.task, tags.get("modelyard.job", "training"), logger.experiment_id,
                    run.run_id, tags)
            client.log_batch(run.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])
        except OSError as err:  # an artifact root that cannot be written: read-only, full
            raise StoreError(f"cannot record run {run.run_id}: {one_line(err)}") from None
        yield run
        if isinstance(logger, ResumableMLFlowLogger):
            logger.flush()  # every point stored before the run is called finished
    except BaseException as error:  # a signal stopped it on purpose: KILLED, not FAILED
        from mlflow.exceptions import MlflowException

        try:
            client.set_terminated(run.run_id,
                                  "KILLED" if interrupting_signal(error) else "FAILED")
        except MlflowException as lost:  # the store is gone: the run stays RUNNING there
            raise lost_store(cfg.logger.tracking_uri, run, lost) from None
        if isinstance(error, MlflowException):  # refused a write, then answered again
            raise lost_store(cfg.logger.tracking_uri, run, error) from None
        raise
    client.set_terminated(run.run_id, "FINISHED")


def lost_store(tracking_uri: str, run: TrackedRun, error: BaseException) -> StoreError:
    """The store failed mid-job (the client's retries are bounded: tracking/store.py): one
    line that says where the job stopped and how to continue the same run."""
    last = run.output_dir / "checkpoints" / "last.ckpt"
    then = (f"; the last checkpoint is {last}: once the store answers, the same command with "
            f"resume=true continues this run" if last.is_file() else "")
    return StoreError(f"lost MLflow tracking store {without_credentials(tracking_uri)} during "
                      f"run {run.run_id} ({one_line(error, 240)}){then}")
