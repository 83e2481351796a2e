"""Library notices a modelyard user cannot act on, silenced at their source.

Each filter names the library's module and its exact message, never a whole category or
library, so modelyard's own warnings and any new warning from a library still show.
"""

from __future__ import annotations

import logging
import warnings

NOTICES = [  # (category, module, message): regular expressions matched from the start
    # dataset schemas: labels are integers by design, and missing values never get that far
    # (the data checks refuse a NaN in one line)
    (UserWarning, r"mlflow\.types\.utils", r"Hint: Inferred schema contains integer column"),
    # Lightning 2.6 on torch 2.13, inside Lightning: nothing a user can change
    (FutureWarning, r"lightning\.pytorch\.utilities\._pytree",
     r"`isinstance\(treespec, LeafSpec\)` is deprecated"),
]


class _NoAdvert(logging.Filter):
    """Lightning's tip to install its cloud logger, printed on every Trainer."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip:")


_NO_ADVERT = _NoAdvert()


def silence_library_notices() -> None:
    """Install the filters (idempotent: Python drops a filter added twice)."""
    for category, module, message in NOTICES:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_NO_ADVERT)
