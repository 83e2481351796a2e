"""Library notices a modelyard user cannot act on, silenced at their source.

Each filter names the library's module and its exact message, never a whole category or
library, so modelyard's own warnings and any new warning from a library still show.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

NOTICES = [  # (category, module, message): regular expressions matched from the start
    # dataset schemas: labels are integers by design, and missing values never get that far
    # (the data checks refuse a NaN in one line)
    (UserWarning, r"mlflow\.types\.utils", r"Hint: Inferred schema contains integer column"),
    # Lightning 2.6 on torch 2.13, inside Lightning: nothing a user can change
    (FutureWarning, r"lightning\.pytorch\.utilities\._pytree",
     r"`isinstance\(treespec, LeafSpec\)` is deprecated"),
]


LOG_NOTICES = {  # logger: messages it logs that tell a user nothing to act on (prefixes)
    # Lightning's tip to install its cloud logger, printed on every Trainer, and its note
    # that it reads the train loader once to size the LR schedule
    "lightning.pytorch.utilities.rank_zero": (  # (its tip is logged at INFO)
        "💡 Tip:", "Loading `train_dataloader` to estimate number of stepping batches"),
    # logging a model: MLflow checks the input example it was given against the signature
    "mlflow.pyfunc": ("Validating input example against model signature",),
    # the promotion gate's scoring (registry/promotion.py): MLflow narrating its own steps
    "mlflow.models.evaluation.default_evaluator": ("Testing metrics on first row",),
    "mlflow.models.evaluation.validation": (
        "Validating candidate model metrics against baseline", "Model validation passed"),
    # labels 0..9 or 0/1: MLflow says which kind of classification it inferred (the gate's
    # own table already names the metric and both scores)
    "mlflow.models.evaluation.evaluators.classifier": ("The evaluation dataset is inferred as",),
}


# Warnings no user can act on, dropped at any level (a prefix this long names one warning)
LOG_WARNINGS = {
    # the gate scores integer class labels (0..9, 0/1), which MLflow cannot tell from counts
    "mlflow.models.evaluation.evaluators.classifier": (
        "According to the evaluation dataset label values, the model type looks like None, "
        "but you specified model type 'classifier'",),
}


class _DropNotices(logging.Filter):
    """Drops one logger's INFO (or lower) records that start with one of its known notices;
    a warning or error that happens to start the same way still shows."""

    def __init__(self, prefixes: tuple[str, ...], up_to: int = logging.INFO) -> None:
        super().__init__()
        self.prefixes, self.up_to = prefixes, up_to

    def filter(self, record: logging.LogRecord) -> bool:
        return (record.levelno > self.up_to
                or not str(record.msg).startswith(self.prefixes))


_FILTERS = [  # (logger, filter): a logger may have both kinds
    *((name, _DropNotices(prefixes)) for name, prefixes in LOG_NOTICES.items()),
    *((name, _DropNotices(prefixes, logging.WARNING)) for name, prefixes in LOG_WARNINGS.items()),
]


SHOW = "MODELYARD_LIBRARY_NOTICES"  # =show: keep every library notice (debugging; the fault
                                     # tests read MLflow's narration as step boundaries)


def silence_library_notices() -> None:
    """Install the filters (idempotent: Python drops a filter added twice)."""
    if os.environ.get(SHOW) == "show":
        return
    for category, module, message in NOTICES:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
    for name, notice_filter in _FILTERS:
        logging.getLogger(name).addFilter(notice_filter)
    # MLflow draws a progress bar for every artifact it reads back (a model's few small files
    # at each registration and promotion); a user who wants them sets it to true
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@contextmanager
def without_forced_notice(start: str) -> Iterator[None]:
    """Drops one warning a library raises under warning filters of its own, which no filter
    outside can reach (MLflow wraps its checks in `simplefilter("once")`); any other warning
    raised meanwhile is shown as usual."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        text = re.sub(r"^\x1b\[\d+m", "", str(w.message))  # after a terminal colour code
        if not text.startswith(start) or os.environ.get(SHOW) == "show":
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
