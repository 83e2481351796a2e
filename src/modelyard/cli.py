"""The `modelyard` command line: arguments parsed here, each subcommand run by one function in
modelyard.commands."""

from __future__ import annotations

import argparse
import sys

from modelyard import __version__
from modelyard.commands import jobs, models, pipeline, stage, team
from modelyard.errors import exit_on_user_error, fail, one_line


def known_tasks() -> str:
    """The project's tasks (conf/experiment/*.yaml), as the help lists them."""
    from modelyard import tasks

    try:
        return ", ".join(tasks.names()) or "none yet"
    except Exception:  # outside a project: say where tasks come from
        return "conf/experiment/<task>.yaml of the project"


class Parser(argparse.ArgumentParser):
    """Usage mistakes as one line, like every other user error."""

    def error(self, message: str) -> None:
        fail(f"{message} (see `{self.prog} --help`)")


def parser() -> argparse.ArgumentParser:
    top = Parser(
        prog="modelyard", description="Lightning models composed by Hydra, tracked by MLflow, "
        "versioned by DVC.", epilog=f"tasks: {known_tasks()}. `modelyard train --help` shows the "
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
    sub = command("prepare", "packaged raw data -> data/<name>/ with a manifest", pipeline.prepare)
    sub.add_argument("dataset", metavar="<dataset|all>",
                     help="a dataset modelyard prepares (data/prepare.py; a wrong name lists them)")
    overrides(sub)
    registry = command("models", "the model registry", None).add_subparsers(
        dest="action", metavar="<action>", required=True)
    sub = command("list", "registered versions, aliases, metrics", models.models_list, registry)
    sub.add_argument("name", nargs="?")
    sub = command("register", "a model file as the task's challenger (idempotent)",
                  models.models_register, registry)
    sub.add_argument("task")
    sub.add_argument("--model-file", help="default: pipeline/<task>/train/model.ckpt")
    overrides(sub)
    sub = command("sync", "every pipeline task's model (params.yaml `tasks`) registered and "
                  "gated, in one process (exit 0, or the first failure's)", models.models_sync,
                  registry)
    sub = command("promote", "gate challenger vs champion (exit 0 promoted, 3 rejected)",
                  models.models_promote, registry)
    sub.add_argument("name")
    overrides(sub)
    sub = command("rollback", "give champion back to the version it replaced",
                  models.models_rollback, registry)
    sub.add_argument("name")
    overrides(sub)
    sub = command("unlock", "remove a promotion lock whose holder is gone",
                  models.models_unlock, registry)
    sub.add_argument("name")
    sub = command("reproduce", "retrain a version from its lineage and compare (exit 0 / 4)",
                  models.models_reproduce, registry)
    sub.add_argument("ref", metavar="<name>/<version>|<name>@<alias>")
    sub.add_argument("--tolerance", type=float, default=1e-6)
    sub = command("predict", "score a CSV, an image/.npy or a .txt of reviews offline; the "
                  "predictions go to stdout as CSV", models.predict)
    sub.add_argument("name", help="registered model, e.g. mnist-cnn (`modelyard models list`)")
    sub.add_argument("file", help="by the model's serving kind: table, a CSV with its feature "
                     "columns; image, an image or .npy of (N, H, W) pixels 0-255; text, a .txt "
                     "of one text per line")
    which = sub.add_mutually_exclusive_group()
    which.add_argument("--alias", help="the version with this alias (default: champion)")
    which.add_argument("--version", help="this version number")
    sub = command("plots", "the pipeline's figures from its history and predictions",
                  pipeline.plots)
    sub.add_argument("task", help="an entry of params.yaml's tasks")
    sub = command("stage", "a DVC pipeline stage of an entry of params.yaml's tasks "
                  "(dvc.yaml runs these)", stage.run)
    sub.add_argument("job", choices=["deps", *stage.JOBS])
    sub.add_argument("name", nargs="?", help="the entry (all of them for deps)")
    overrides(sub)
    sub = command("report", "markdown for a pull request: test metrics, params, figures and "
                  "stages of this revision against --base", pipeline.report)
    sub.add_argument("--base", required=True, metavar="<rev>",
                     help="git revision to compare with (main, origin/main, HEAD~1, a sha)")
    sub.add_argument("--repro-log", metavar="<file>",
                     help="saved output of `dvc repro`: which stages ran or were restored")
    sub.add_argument("-o", "--output", metavar="<file.md>", help="default: stdout")
    sub.add_argument("--images-dir", metavar="<dir>",
                     help="default: <output stem>-plots/ beside the report (report-plots/)")
    sub = command("server", "team MLflow server (conf/server.yaml)", team.server)
    overrides(sub)
    users = command("users", "users of the team server (an admin's credentials)", None
                    ).add_subparsers(dest="action", metavar="<action>", required=True)
    sub = command("add", "a user in a role; the password is read from stdin", team.users_add, users)
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
            jobs.hydra_command(argv[0], argv[1:])  # Hydra parses its own arguments and --help
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
