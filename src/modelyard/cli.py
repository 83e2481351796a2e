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

PROMOTION_REJECTED_EXIT = 3
NOT_REPRODUCED_EXIT = 4
HYDRA_FLAGS = {"-m", "--multirun", "-h", "--help", "--hydra-help", "-c", "--cfg", "-i", "--info",
               "-p", "--package", "--resolve", "-sc", "--shell-completion"}
USAGE = """\
modelyard <command> [args]

commands:
  prepare <market|digits|reviews|all> [key=value ...]   packaged raw data -> data/<name>/
  train experiment=<task> [key=value ...]               fit, test, record in MLflow
  evaluate experiment=<task> ckpt_path=<file> [...]     test a checkpoint
  sweep experiment=<task> hparams_search=<name> [n_trials=N]   Optuna study, shared storage
  models list [<name>]                                  registered versions, aliases, metrics
  models promote <name> [key=value ...]                 gate challenger vs champion (exit 0 / 3)
  models rollback <name>                                give champion back to the one it replaced
  models reproduce <name>/<version> [--tolerance T]     retrain from its lineage, diff (exit 0 / 4)
  predict <name> <file> [--alias A]                     score a CSV, image/.npy or .txt offline
  server [key=value ...]                                team MLflow server (conf/server.yaml)

tasks: market_regressor, mnist_cnn, sentiment_lstm
`modelyard train --help` shows the config groups and their options (Hydra).
"""


def _run_hydra_app(command: str, args: list[str]) -> None:
    from modelyard.config import check_overrides

    if not HYDRA_FLAGS.intersection(args):
        # one-line errors before torch is even imported: config mistakes, a dead server
        cfg = check_overrides(command, args)
        if cfg.get("logger"):
            from modelyard.uris import check_reachable

            check_reachable(cfg.logger.tracking_uri)
        if command == "train" and cfg.get("resume"):
            args = [*args, *_resume_overrides(cfg)]
    if command == "train":
        from modelyard.train import main as app
    elif command == "sweep":
        from modelyard.sweep import main as app
    else:
        from modelyard.evaluate import main as app
    # Lightning's DDP launcher starts ranks 1..n-1 as `python -m <__main__.__spec__.name>` with
    # our argv: name the Hydra app's module, which runs as a script, instead of this CLI.
    import importlib.util

    import __main__

    __main__.__spec__ = importlib.util.find_spec(f"modelyard.{command}")
    sys.argv = [f"modelyard {command}", *args]
    app()


def _resume_overrides(cfg) -> list[str]:
    """resume=true: carry on from the newest last.ckpt of the task, in that job's directory."""
    from modelyard.errors import ConfigError

    root = Path(cfg.paths.output_root) / cfg.task
    found = sorted(root.glob("*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise ConfigError(f"resume=true: no */checkpoints/last.ckpt under {root} to resume from")
    last = found[-1]
    print(f"resuming from {last}", file=sys.stderr)
    return [f"hydra.run.dir={last.parents[1]}", f"ckpt_path={last}"]


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


def _use_project_tracking_store() -> str:
    """MLFLOW_TRACKING_URI, else the project's SQLite store, as conf/logger/mlflow.yaml says.

    A server that does not answer fails here in seconds, not after the client's retries."""
    import os

    from modelyard.config import PROJECT_ROOT
    from modelyard.uris import check_reachable, without_credentials

    uri = os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{PROJECT_ROOT}/mlflow.db")
    check_reachable(uri)
    return without_credentials(uri)


def _server(args: list[str]) -> None:
    from modelyard.config import check_overrides
    from modelyard.server import serve

    serve(check_overrides("server", args))


def _models(args: list[str]) -> None:
    from modelyard.errors import ConfigError

    usage = ("usage: modelyard models list [<name>] | promote <name> [key=value ...] "
             "| rollback <name> | reproduce <name>/<version> [--tolerance T]")
    arity = {"list": lambda n: n <= 2, "promote": lambda n: n >= 2,
             "rollback": lambda n: n == 2, "reproduce": lambda n: n in (2, 4)}
    if not args or args[0] not in arity or not arity[args[0]](len(args)):
        raise ConfigError(usage)
    store = _use_project_tracking_store()
    from mlflow.exceptions import MlflowException

    try:
        if args[0] == "list":
            _list_models(args[1] if len(args) == 2 else None, store)
        elif args[0] == "promote":
            _promote(args[1], args[2:])
        elif args[0] == "reproduce":
            _reproduce(args[1], args[2:], usage)
        else:
            from modelyard.promotion import rollback

            demoted, restored = rollback(args[1])
            print(f"{args[1]}: champion v{demoted} -> v{restored} (rolled back)")
    except MlflowException as err:
        raise ConfigError(str(err).splitlines()[0]) from None


def _reproduce(ref: str, options: list[str], usage: str) -> None:
    from rich.console import Console
    from rich.table import Table

    from modelyard.errors import ConfigError
    from modelyard.reproduce import reproduce

    try:
        tolerance = float(options[1]) if options and options[0] == "--tolerance" else 1e-6
    except ValueError:
        raise ConfigError(usage) from None
    if options and options[0] != "--tolerance":
        raise ConfigError(usage)
    result = reproduce(ref)
    table = Table(title=f"{result.name} v{result.version}: reproduction")
    for column in ("", "original", "reproduced", "|difference|"):
        table.add_column(column)
    for tag, original, again in result.lineage:
        table.add_row(tag, original[:16], again[:16], "same" if original == again else "DIFFERENT")
    for metric, original, again in result.metrics:
        table.add_row(metric, f"{original:.8g}", f"{again:.8g}", f"{abs(original - again):.2g}")
    Console(width=160).print(table)
    if result.config_differences:
        print(f"config differs in: {', '.join(result.config_differences)}")
    verdict = result.matches(tolerance)
    print(f"{'reproduced' if verdict else 'NOT reproduced'}: largest metric difference "
          f"{result.max_abs_diff:.3g} (tolerance {tolerance:g})")
    if not verdict:
        sys.exit(NOT_REPRODUCED_EXIT)


def _predict(args: list[str]) -> None:
    from modelyard.errors import ConfigError

    parser = argparse.ArgumentParser(prog="modelyard predict", add_help=False)
    parser.add_argument("name")
    parser.add_argument("file")
    parser.add_argument("--alias", default="champion")
    try:
        options = parser.parse_args(args)
    except SystemExit:
        raise ConfigError("usage: modelyard predict <name> <file> [--alias champion]") from None
    _use_project_tracking_store()
    import mlflow
    from mlflow.exceptions import MlflowException

    from modelyard.serving import read_inputs

    inputs = read_inputs(options.file)
    try:
        model = mlflow.pyfunc.load_model(f"models:/{options.name}@{options.alias}")
        predictions = model.predict(inputs)
    except MlflowException as err:
        raise ConfigError(" ".join(str(err).split())[:500]) from None
    print(predictions.to_csv(index=False), end="")


def _list_models(name: str | None, store: str) -> None:
    from rich.console import Console
    from rich.table import Table

    from modelyard.registry import list_versions

    rows = list_versions(name)
    table = Table(title=f"registered models ({store})")
    for column in ("model", "version", "aliases", "metrics", "data", "git"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row.values())
    Console(width=160).print(table)


def _promote(name: str, overrides: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    from modelyard.promotion import promote

    decision = promote(name, overrides)
    table = Table(title=f"{name}: {'PROMOTED' if decision.promoted else 'REJECTED'}")
    for column in ("role", "version", decision.metric):
        table.add_column(column)
    for role, version in (("challenger", decision.challenger), ("champion", decision.champion)):
        if version is not None:
            score = decision.scores.get(role)
            table.add_row(role, version, "" if score is None else f"{score:.4f}")
    Console(width=160).print(table)
    print(decision.reason)
    if not decision.promoted:
        sys.exit(PROMOTION_REJECTED_EXIT)


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
        elif known.command == "predict":
            _predict(rest)
        elif known.command == "server":
            _server(rest)
        elif known.command in ("train", "evaluate", "sweep"):
            _run_hydra_app(known.command, rest)
        else:
            from modelyard.errors import ConfigError

            raise ConfigError(f"unknown command {known.command!r}; see `modelyard --help`")
