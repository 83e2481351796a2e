"""Reading a user's or a prepared CSV with the columns the config names."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from modelyard.errors import DataError, one_line


def read_columns(file: Path, columns: list[str]) -> pd.DataFrame:
    """The named columns of a CSV; a clear DataError if unreadable or a column is absent."""
    try:
        frame = pd.read_csv(file)
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise DataError(f"{file}: unreadable CSV ({one_line(err)})") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"{file}: missing configured column(s) {missing}; it has {list(frame.columns)}"
        )
    if frame.empty:
        raise DataError(f"{file}: no rows")
    return frame[columns]
