"""The `modelyard` command. Each subcommand parses its arguments and calls one function;
heavy imports (torch, Lightning, MLflow) wait until a command needs them, so `--help` and
mistakes answer at once."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from modelyard import __version__
from modelyard.errors import ConfigError, exit_on_user_error, fail, one_line

PROMOTION_REJECTED_EXIT = 3
NOT_REPRODUCED_EXIT = 4
HYDRA_FLAGS = {"-m", "--multirun", "-h", "--help", "--hydra-help", "-c", "--cfg", "-i", "--info",
               "-p", "--package", "--resolve", "-sc", "--shell-completion"}
TASKS = "market_regressor, mnist_cnn, sentiment_lstm"


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


def tracking_client():
    """The project's tracking store ($MLFLOW_TRACKING_URI, else its mlflow.db), checked, with
    the runs of killed jobs ended."""
    from modelyard import project
    from modelyard.tracking import store
    from modelyard.tracking.owner import end_orphaned_runs

    uri = store.default_uri(project.home(project.root()))
    store.check(uri)
    client = store.client(uri)
    end_orphaned_runs(client)
    return client


def prepare(options: argparse.Namespace) -> None:
    from omegaconf import OmegaConf

    from modelyard.config import compose
    from modelyard.data.prepare import PREPARERS, prepare

    if options.dataset != "all" and options.dataset not in PREPARERS:
        raise ConfigError(f"unknown dataset {options.dataset!r}: {', '.join(PREPARERS)} or all")
    names = list(PREPARERS) if options.dataset == "all" else [options.dataset]
    cfg = compose("prepare", options.overrides)
    fractions = OmegaConf.to_container(cfg.split, resolve=True)
    for name in names:
        print(f"prepared {name}: {prepare(name, Path(cfg.out_dir), fractions, int(cfg.seed))}")


def models_list(options: argparse.Namespace) -> None:
    client = tracking_client()
    from rich.console import Console
    from rich.table import Table

    from modelyard.registry.versions import list_versions
    from modelyard.tracking.store import without_credentials

    table = Table(title=f"registered models ({without_credentials(client.tracking_uri)})")
    for column in ("model", "version", "aliases", "metrics", "data", "git"):
        table.add_column(column)
    for row in list_versions(client, options.name):
        table.add_row(*row.values())
    Console(width=160).print(table)


def models_register(options: argparse.Namespace) -> None:
    """A model file (default: the pipeline's) as the task's challenger; idempotent."""
    from modelyard.config import compose
    from modelyard.registry.register import register
    from modelyard.training import build

    cfg = compose("train", [f"experiment={options.task}", *options.overrides])
    model_file = Path(options.model_file or f"pipeline/{options.task}/train/model.ckpt")
    version = register(cfg, model_file, build.datamodule(cfg))
    aliases = ",".join(sorted(version.aliases)) or "no alias"
    print(f"registered: models:/{version.name}/{version.version} ({aliases})")


def models_promote(options: argparse.Namespace) -> None:
    client = tracking_client()
    from modelyard.tracking.users import require_manage

    require_manage(client.tracking_uri, options.name, "promote")  # before torch loads
    from rich.console import Console
    from rich.table import Table

    from modelyard.registry.promotion import promote

    decision = promote(client, options.name, options.overrides)
    table = Table(title=f"{options.name}: {'PROMOTED' if decision.promoted else 'REJECTED'}")
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


def models_rollback(options: argparse.Namespace) -> None:
    client = tracking_client()
    from modelyard.tracking.users import require_manage

    require_manage(client.tracking_uri, options.name, "roll back")  # before torch loads
    from modelyard.registry.promotion import rollback

    demoted, restored = rollback(client, options.name, overrides=options.overrides)
    print(f"{options.name}: champion v{demoted} -> v{restored} (rolled back)")


def models_unlock(options: argparse.Namespace) -> None:
    client = tracking_client()
    from modelyard.registry.lock import break_lock
    from modelyard.tracking.users import require_manage

    require_manage(client.tracking_uri, options.name, "unlock")
    holder = break_lock(client, options.name, "unlocked by `modelyard models unlock`")
    print(f"{options.name}: " + (f"removed the promotion lock held by {holder}" if holder
                                 else "no promotion lock held"))


def models_reproduce(options: argparse.Namespace) -> None:
    client = tracking_client()
    from rich.console import Console
    from rich.table import Table

    from modelyard.registry.reproduce import reproduce

    result = reproduce(client, options.ref)
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
    verdict = result.matches(options.tolerance)
    print(f"{'reproduced' if verdict else 'NOT reproduced'}: largest metric difference "
          f"{result.max_abs_diff:.3g} (tolerance {options.tolerance:g})")
    if not verdict:
        sys.exit(NOT_REPRODUCED_EXIT)


def predict(options: argparse.Namespace) -> None:
    client = tracking_client()
    import mlflow
    from mlflow.exceptions import MlflowException

    from modelyard.registry.serving import explain, read_inputs
    from modelyard.registry.versions import chosen_version, load_checked, predict_in_batches

    inputs = read_inputs(options.file)
    mlflow.set_registry_uri(client.tracking_uri)  # models:/ URIs resolve in the checked store
    version = chosen_version(client, options.name, options.alias, options.version)
    try:
        predictions = predict_in_batches(load_checked(version), inputs)
    except MlflowException as err:
        raise ConfigError(explain(err)) from None
    print(predictions.to_csv(index=False), end="")


def new_password() -> str:
    """A new user's password: typed twice at a terminal, else the first line of stdin (never
    an argument: it would stay in shell history and the process list)."""
    import getpass

    if sys.stdin.isatty():
        password = getpass.getpass("new user's password: ")
        if getpass.getpass("again: ") != password:
            raise ConfigError("the two passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise ConfigError("no password (type it, or pipe it in on stdin)")
    return password


def users_add(options: argparse.Namespace) -> None:
    """A user of the team server in a role; the caller's credentials must be an admin's."""
    client = tracking_client()
    from modelyard.config import compose
    from modelyard.tracking.users import add_user

    password = new_password()
    # the team's registered models (conf/registry), whatever the experiment
    models = compose("train", ["experiment=market_regressor"]).registry.models
    created = add_user(client.tracking_uri, options.name, password, options.role,
                       [str(m.name) for m in models.values()])
    if created:
        print(f"created registered models {', '.join(created)} (owned by the admin)")
    print(f"added user {options.name} ({options.role})")


def plots(options: argparse.Namespace) -> None:
    from modelyard.plots import write_pipeline_plots

    for path in write_pipeline_plots(options.task, options.overrides):
        print(f"wrote {path}")


def report(options: argparse.Namespace) -> None:
    from modelyard import project
    from modelyard.report import write_report

    markdown = write_report(
        project.root(), options.base,
        repro_log=Path(options.repro_log) if options.repro_log else None,
        output=Path(options.output) if options.output else None,
        images_dir=Path(options.images_dir) if options.images_dir else None)
    if options.output:
        print(f"wrote {options.output}", file=sys.stderr)
    else:
        print(markdown, end="")


def server(options: argparse.Namespace) -> None:
    from modelyard.config import check_overrides
    from modelyard.tracking.server import serve
    from modelyard.tracking.server_auth import refuse_passwords_in

    refuse_passwords_in(options.overrides)
    serve(check_overrides("server", options.overrides))


class Parser(argparse.ArgumentParser):
    """Usage mistakes as one line, like every other user error."""

    def error(self, message: str) -> None:
        fail(f"{message} (see `{self.prog} --help`)")


def parser() -> argparse.ArgumentParser:
    top = Parser(
        prog="modelyard", description="Lightning models composed by Hydra, tracked by MLflow, "
        "versioned by DVC.", epilog=f"tasks: {TASKS}. `modelyard train --help` shows the "
        "config groups and their options (Hydra).")
    top.add_argument("--version", action="version", version=f"modelyard {__version__}")
    commands = top.add_subparsers(dest="command", metavar="<command>")

    def command(name: str, helptext: str, run, parent=commands) -> argparse.ArgumentParser:
        sub = parent.add_parser(name, help=helptext, description=helptext)
        sub.set_defaults(run=run)
        return sub

    def overrides(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")

    for name, helptext in (("train", "fit, test, record in MLflow, register the challenger"),
                           ("evaluate", "test a checkpoint (ckpt_path=<file>)"),
                           ("sweep", "Optuna study over conf/hparams_search/<name>")):
        command(name, f"{helptext}: experiment=<task> [key=value ...]", None)
    sub = command("prepare", "packaged raw data -> data/<name>/ with a manifest", prepare)
    sub.add_argument("dataset", metavar="<market|digits|reviews|all>")
    overrides(sub)
    models = command("models", "the model registry", None).add_subparsers(
        dest="action", metavar="<action>", required=True)
    sub = command("list", "registered versions, aliases, metrics", models_list, models)
    sub.add_argument("name", nargs="?")
    sub = command("register", "a model file as the task's challenger (idempotent)",
                  models_register, models)
    sub.add_argument("task")
    sub.add_argument("--model-file", help="default: pipeline/<task>/train/model.ckpt")
    overrides(sub)
    sub = command("promote", "gate challenger vs champion (exit 0 promoted, 3 rejected)",
                  models_promote, models)
    sub.add_argument("name")
    overrides(sub)
    sub = command("rollback", "give champion back to the version it replaced",
                  models_rollback, models)
    sub.add_argument("name")
    overrides(sub)
    sub = command("unlock", "remove a promotion lock whose holder is gone", models_unlock, models)
    sub.add_argument("name")
    sub = command("reproduce", "retrain a version from its lineage and compare (exit 0 / 4)",
                  models_reproduce, models)
    sub.add_argument("ref", metavar="<name>/<version>|<name>@<alias>")
    sub.add_argument("--tolerance", type=float, default=1e-6)
    sub = command("predict", "score a CSV, an image/.npy or a .txt of reviews offline; the "
                  "predictions go to stdout as CSV", predict)
    sub.add_argument("name", help="registered model, e.g. mnist-cnn (`modelyard models list`)")
    sub.add_argument("file", help="market: CSV with the feature columns; digits: a 28x28 "
                     "image or .npy of (N, 28, 28) pixels 0-255; reviews: .txt, one per line")
    which = sub.add_mutually_exclusive_group()
    which.add_argument("--alias", help="the version with this alias (default: champion)")
    which.add_argument("--version", help="this version number")
    sub = command("plots", "the pipeline's figures from its history and predictions", plots)
    sub.add_argument("task")
    overrides(sub)
    sub = command("report", "markdown for a pull request: test metrics, params, figures and "
                  "stages of this revision against --base", report)
    sub.add_argument("--base", required=True, metavar="<rev>",
                     help="git revision to compare with (main, origin/main, HEAD~1, a sha)")
    sub.add_argument("--repro-log", metavar="<file>",
                     help="saved output of `dvc repro`: which stages ran or were restored")
    sub.add_argument("-o", "--output", metavar="<file.md>", help="default: stdout")
    sub.add_argument("--images-dir", metavar="<dir>",
                     help="default: <output stem>-plots/ beside the report (report-plots/)")
    sub = command("server", "team MLflow server (conf/server.yaml)", server)
    overrides(sub)
    users = command("users", "users of the team server (an admin's credentials)", None
                    ).add_subparsers(dest="action", metavar="<action>", required=True)
    sub = command("add", "a user in a role; the password is read from stdin", users_add, users)
    sub.add_argument("name")
    sub.add_argument("--role", required=True, choices=["researcher", "promoter"],
                     help="researcher: runs, versions, challenger; promoter: also champion")
    return top


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    from modelyard.quiet import silence_library_notices
    from modelyard.tracking.store import bound_client_retries, refuse_pickled_models

    bound_client_retries()
    refuse_pickled_models()
    silence_library_notices()
    with exit_on_user_error():
        if argv and argv[0] in ("train", "evaluate", "sweep"):
            hydra_command(argv[0], argv[1:])  # Hydra parses its own arguments and --help
            return
        top = parser()
        options, extra = top.parse_known_args(argv)
        # overrides may also follow an option (`register task --model-file F key=value`)
        if extra and (not hasattr(options, "overrides")
                      or any(e.startswith("-") or "=" not in e for e in extra)):
            top.error(f"unrecognized arguments: {' '.join(extra)}")
        if extra:
            options.overrides += extra
        if options.command is None:
            parser().print_help()
            return
        try:
            options.run(options)
        except Exception as err:  # the registry's own refusals (no such model, version)
            mlflow_errors = sys.modules.get("mlflow.exceptions")
            if mlflow_errors and isinstance(err, mlflow_errors.MlflowException):
                fail(one_line(err))
            raise
