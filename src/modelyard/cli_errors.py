"""Turn a user's mistake into one line on stderr and a non-zero exit, never a trace."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from modelyard.errors import ModelyardError

USER_ERROR_EXIT = 2


def fail(message: str) -> None:
    print(f"modelyard: error: {message}", file=sys.stderr)
    sys.exit(USER_ERROR_EXIT)


@contextmanager
def exit_on_user_error() -> Iterator[None]:
    try:
        yield
    except ModelyardError as err:
        fail(str(err))
