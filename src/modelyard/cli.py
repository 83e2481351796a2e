"""The `modelyard` command: prepare data, train and evaluate.

Heavy imports (torch, Lightning, MLflow) wait until a command needs them, so `--help` and
config mistakes answer in about a second.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from modelyard import __version__
from modelyard.cli_errors import exit_on_user_error

HYDRA_FLAGS = {"-m", "--multirun", "-h", "--help", "--hydra-help", "-c", "--cfg", "-i", "--info",
               "-p", "--package", "--resolve", "-sc", "--shell-completion"}
USAGE = """\
modelyard <command> [args]

commands:
  prepare <market|digits|reviews|all> [key=value ...]   packaged raw data -> data/<name>/
  train experiment=<task> [key=value ...]               fit, test, record in MLflow
  evaluate experiment=<task> ckpt_path=<file> [...]     test a checkpoint
  models list [<name>]                                  registered versions, aliases, metrics

tasks: market_regressor, mnist_cnn, sentiment_lstm
`modelyard train --help` shows the config groups and their options (Hydra).
"""


def _run_hydra_app(command: str, args: list[str]) -> None:
    from modelyard.config import check_overrides

    if not HYDRA_FLAGS.intersection(args):
        check_overrides(command, args)  # one-line errors before torch is even imported
    if command == "train":
        from modelyard.train import main as app
    else:
        from modelyard.evaluate import main as app
    sys.argv = [f"modelyard {command}", *args]
    app()


def _prepare(args: list[str]) -> None:
    from omegaconf import OmegaConf

    from modelyard.config import compose
    from modelyard.data.prepare import PREPARERS, prepare
    from modelyard.errors import ConfigError

    if not args or args[0].startswith("-") or "=" in args[0]:
        raise ConfigError(f"usage: modelyard prepare <{'|'.join(PREPARERS)}|all> [key=value ...]")
    names = list(PREPARERS) if args[0] == "all" else [args[0]]
    cfg = compose("prepare", args[1:])
    fractions = OmegaConf.to_container(cfg.split, resolve=True)
    for name in names:
        target = prepare(name, Path(cfg.out_dir), fractions, int(cfg.seed))
        print(f"prepared {name}: {target}")


def _models(args: list[str]) -> None:
    from modelyard.errors import ConfigError

    if not args or args[0] != "list" or len(args) > 2:
        raise ConfigError("usage: modelyard models list [<registered model name>]")
    import os

    from mlflow.exceptions import MlflowException
    from rich.console import Console
    from rich.table import Table

    from modelyard.config import PROJECT_ROOT
    from modelyard.registry import list_versions

    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{PROJECT_ROOT}/mlflow.db")
    try:
        rows = list_versions(args[1] if len(args) == 2 else None)
    except MlflowException as err:
        raise ConfigError(str(err).splitlines()[0]) from None
    table = Table(title=f"registered models ({os.environ['MLFLOW_TRACKING_URI']})")
    for column in ("model", "version", "aliases", "metrics", "data", "git"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row.values())
    Console(width=160).print(table)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="modelyard", usage=USAGE, add_help=False)
    parser.add_argument("command", nargs="?")
    parser.add_argument("--version", action="version", version=f"modelyard {__version__}")
    parser.add_argument("-h", "--help", action="store_true")
    known, rest = parser.parse_known_args(argv[:1])
    rest += argv[1:]
    if known.help or not known.command:
        print(USAGE, end="")
        return
    with exit_on_user_error():
        if known.command == "prepare":
            _prepare(rest)
        elif known.command == "models":
            _models(rest)
        elif known.command in ("train", "evaluate"):
            _run_hydra_app(known.command, rest)
        else:
            from modelyard.errors import ConfigError

            raise ConfigError(f"unknown command {known.command!r}; see `modelyard --help`")
