"""train / evaluate / sweep: the override check, then the Hydra app of the job."""

from __future__ import annotations

import sys
from pathlib import Path

from modelyard.errors import ConfigError, one_line

HYDRA_FLAGS = {"-m", "--multirun", "-h", "--help", "--hydra-help", "-c", "--cfg", "-i", "--info",
               "-p", "--package", "--resolve", "-sc", "--shell-completion"}


def hydra_command(command: str, args: list[str]) -> None:
    """train / evaluate / sweep: checked in one line before torch loads, then the Hydra app."""
    import importlib
    import importlib.util

    from modelyard import project
    from modelyard.config import check_overrides
    from modelyard.tracking import store

    project.check_code_matches(project.root())
    if not HYDRA_FLAGS.intersection(args):
        cfg = check_overrides(command, args)
        if cfg.get("logger"):
            store.check(cfg.logger.tracking_uri)
        writable(Path(cfg.paths.output_root))
        if command == "train" and cfg.get("resume"):
            args = [*args, *resume_overrides(cfg)]
    module = f"modelyard.training.{command}" if command != "sweep" else "modelyard.sweep"
    # Lightning's DDP launcher starts ranks 1..n-1 as `python -m <__main__.__spec__.name>` with
    # our argv: name the Hydra app's module, which runs as a script, instead of this CLI.
    import __main__

    __main__.__spec__ = importlib.util.find_spec(module)
    sys.argv = [f"modelyard {command}", *args]
    importlib.import_module(module).main()


def writable(directory: Path) -> None:
    """Where jobs write: refused in one line before Hydra, which would print a trace."""
    import os

    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"output directory {directory}: {one_line(err)}") from None
    if not os.access(directory, os.W_OK):
        raise ConfigError(f"output directory {directory} is not writable")


def resume_overrides(cfg) -> list[str]:
    """resume=true: carry on from the newest last.ckpt of the task, in that job's directory."""
    root = Path(cfg.paths.output_root) / cfg.task
    found = sorted(root.glob("*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise ConfigError(f"resume=true: no */checkpoints/last.ckpt under {root} to resume from")
    last = found[-1]
    print(f"resuming from {last}", file=sys.stderr)
    return [f"hydra.run.dir={last.parents[1]}", f"ckpt_path={last}"]
