"""Errors a user can fix, and the one way they are shown: one line on stderr, non-zero exit."""

from __future__ import annotations

import errno
import sys
from collections.abc import Iterator
from contextlib import contextmanager

USER_ERROR_EXIT = 2


class ModelyardError(Exception):
    """A problem with the user's input (config, data, environment), not a bug."""


class ConfigError(ModelyardError):
    """A config or override that cannot work."""


class DataError(ModelyardError):
    """A missing, corrupt or malformed data file."""


class StoreError(ModelyardError):
    """A tracking store, registry or study storage that cannot be used."""


def one_line(error: BaseException | str, limit: int = 300) -> str:
    """An error's message (a database driver's own, when SQLAlchemy wraps one) on one line."""
    if isinstance(error, BaseException):
        text = str(getattr(error, "orig", None) or error).strip() or type(error).__name__
    else:
        text = error
    return " ".join(text.split())[:limit]


SIGNAL_EXITS = {"SIGINT": 130, "SIGTERM": 143}  # 128 + the signal's number, as shells report


def interrupting_signal(error: BaseException) -> str | None:
    """The signal that ended a job, as Lightning reports it: SIGTERM stops training after the
    current batch with a `SIGTERMException` (a SystemExit without a code, which would exit 0);
    Ctrl-C ends in `sys.exit(1)` raised while handling the KeyboardInterrupt."""
    if isinstance(error, KeyboardInterrupt) or isinstance(error.__context__, KeyboardInterrupt):
        return "SIGINT"
    if type(error).__name__ == "SIGTERMException":
        return "SIGTERM"
    return None


def fail(message: str) -> None:
    print(f"modelyard: error: {message}", file=sys.stderr)
    sys.exit(USER_ERROR_EXIT)


# a disk the job cannot write to: full, read-only, over quota, not ours
DISK_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EACCES}


@contextmanager
def exit_on_user_error() -> Iterator[None]:
    try:
        yield
    except ModelyardError as err:
        fail(str(err))
    except OSError as err:
        if err.errno not in DISK_ERRNOS:
            raise
        fail(f"cannot write {err.filename2 or err.filename}: {err.strerror}")
