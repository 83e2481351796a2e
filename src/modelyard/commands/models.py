"""`modelyard models …` and `modelyard predict`: the registry, read and changed through the
project's tracking store."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from modelyard.errors import ConfigError

PROMOTION_REJECTED_EXIT = 3
NOT_REPRODUCED_EXIT = 4


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


def models_sync(options: argparse.Namespace) -> None:
    """`make run`'s registry step: each pipeline entry's model file registered, then gated
    (a rejection, exit 3, keeps the champion and goes on); the first other failure stops it."""
    from modelyard import project
    from modelyard.commands import stage

    root = project.root()
    client = tracking_client()
    for name in stage.entries(root):
        version = stage.register(name, stage.overrides(name, "register", root), root)
        try:
            show_decision(client, version.name, [])
        except SystemExit as stop:
            if stop.code != PROMOTION_REJECTED_EXIT:
                raise


def models_promote(options: argparse.Namespace) -> None:
    client = tracking_client()
    show_decision(client, options.name, options.overrides)


def show_decision(client, name: str, overrides: list[str]) -> None:
    """Gate `name`'s challenger and print the decision; exit 3 when it is rejected."""
    from modelyard.tracking.users import require_manage

    require_manage(client.tracking_uri, name, "promote")  # before torch loads
    from rich.console import Console
    from rich.table import Table

    from modelyard.registry.promotion import promote

    decision = promote(client, name, overrides)
    if not decision.promoted and decision.champion == decision.challenger:
        print(f"{name}: v{decision.challenger}: {decision.reason}")  # nothing was scored
        sys.exit(PROMOTION_REJECTED_EXIT)
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
