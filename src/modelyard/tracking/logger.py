"""Lightning's MLflow logger, batched and resumable."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from lightning.pytorch.loggers import MLFlowLogger
from lightning.pytorch.utilities import rank_zero_only
from mlflow.entities import Metric
from mlflow.environment_variables import MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS
from mlflow.utils.async_logging.run_operations import RunOperations

from modelyard.errors import ConfigError
from modelyard.tracking.owner import owner_tags


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
        # the run it creates names its process, so a later command can tell it was killed
        kwargs["tags"] = {**(kwargs.get("tags") or {}), **owner_tags()}
        super().__init__(*args, **kwargs)  # params and tags stay synchronous: logged once
        self.synchronous, self.buffer_seconds = synchronous, buffer_seconds
        try:  # MLflow parses its own variable only in its logging thread, which a bad value
            MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS.get()  # kills, leaving every wait hanging
        except ValueError as err:
            raise ConfigError(str(err)) from None
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
        """Lightning calls this at the end of fit and again of test; the run is not over then
        (testing, exporting, figures follow). Its status is set once, by tracking.run, which
        owns the run's lifecycle: each status change also waits up to a second for MLflow's
        logging thread to stop."""
        if status == "success":  # on a failure the run is ending anyway: keep its own error
            self.flush()
