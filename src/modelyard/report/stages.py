"""What `dvc repro` did with each stage, read from its output: DVC has no machine-readable
record of it, but logs one line per stage whose wording is stable across DVC 3 releases
(dvc/stage/__init__.py, dvc/stage/run.py, dvc/stage/cache.py)."""

from __future__ import annotations

import re
from pathlib import Path

from modelyard.errors import ConfigError

RAN = "ran"
RESTORED = "restored from run-cache"
PULLED = "pulled"
UNCHANGED = "unchanged"
FAILED = "FAILED"

# the last matching line for a stage wins: `--pull` logs "Pulling data for" before it falls
# back to the run-cache or to running the command
PATTERNS = (
    (re.compile(r"Stage '(?P<stage>[^']+)' didn't change, skipping"), UNCHANGED),
    (re.compile(r"^'(?P<stage>[^']+)' didn't change, skipping", re.M), UNCHANGED),
    (re.compile(r"Pulling data for stage: '(?P<stage>[^']+)'"), PULLED),
    (re.compile(r"Stage '(?P<stage>[^']+)' is cached - skipping run"), RESTORED),
    (re.compile(r"Running stage '(?P<stage>[^']+)':"), RAN),
)
FAILURE = re.compile(r"failed to reproduce(?: stages:)? (?P<names>.+)$", re.M)
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def parse(log: str) -> dict[str, str]:
    """Stage address (`train@mnist_cnn`) -> outcome, in the order DVC first named them."""
    text = ANSI.sub("", log).replace("\r", "\n")
    found: list[tuple[int, str, str]] = []
    for pattern, outcome in PATTERNS:
        found += [(m.start(), m["stage"], outcome) for m in pattern.finditer(text)]
    for m in FAILURE.finditer(text):  # "failed to reproduce stages: 'a', 'b' and 'c'"
        found += [(m.start(), name, FAILED) for name in re.findall(r"'([^']+)'", m["names"])]
    outcomes: dict[str, str] = {}
    for _, stage, outcome in sorted(found):
        outcomes[stage] = outcome
    return outcomes


def read(path: Path) -> dict[str, str]:
    """The outcomes in a saved `dvc repro` log; a log that names no stage is refused (it is
    not a `dvc repro` log, or the pipeline has no stage)."""
    try:
        text = path.read_text(errors="replace")
    except OSError as err:
        raise ConfigError(f"--repro-log {path}: {err.strerror or err}") from None
    outcomes = parse(text)
    if not outcomes:
        raise ConfigError(f"--repro-log {path}: names no stage; expected the output of "
                          f"`dvc repro 2>&1 | tee {path}`")
    return outcomes


def split(stage: str) -> tuple[str, str]:
    """`train@mnist_cnn` -> (`train`, `mnist_cnn`); a plain stage is its own row."""
    name, _, item = stage.partition("@")
    return name, item or name
