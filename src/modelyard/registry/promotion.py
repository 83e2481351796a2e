"""Promotion gate and rollback. Challenger and champion are scored by
`mlflow.models.evaluate` on the challenger's frozen test split (the data its record names,
checked by its manifest hash); the policy the challenger was registered with becomes a
`MetricThreshold` and `mlflow.validate_evaluation_results` decides. Every decision is written
as tags on the versions involved."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import mlflow
import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from mlflow.models import MetricThreshold
from mlflow.models.evaluation.validation import ModelValidationFailedException
from mlflow.tracking import MlflowClient

from modelyard import project
from modelyard.config import compose
from modelyard.errors import ModelyardError
from modelyard.registry import kinds
from modelyard.registry import policy as policies
from modelyard.registry import record as records
from modelyard.registry.lock import promotion_lock
from modelyard.registry.versions import alias_version as _alias
from modelyard.registry.versions import load_checked, predict_in_batches
from modelyard.tracking import describe
from modelyard.tracking.owner import owner_tags
from modelyard.tracking.users import require_manage


@dataclass
class Decision:
    name: str
    promoted: bool
    reason: str
    metric: str
    challenger: str
    champion: str | None
    scores: dict[str, float] = field(default_factory=dict)
    scoring_run: str | None = None  # the MLflow run that scored both versions


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _frozen_test_datamodule(record: dict[str, Any], challenger: ModelVersion):
    """The data the challenger's record names, read in this checkout, refused if its bytes
    changed since training."""
    datamodule = records.datamodule(record, project.root())
    recorded = challenger.tags.get("data.manifest_sha256", "")
    if datamodule.manifest_sha256 and recorded != datamodule.manifest_sha256:
        raise ModelyardError(
            f"test split at {record['data']['path']} differs from the one version "
            f"{challenger.version} was trained on (manifest sha256 {recorded[:12]}…)"
        )
    return datamodule


def _score(name: str, version: ModelVersion, model, record: dict[str, Any], inputs, targets,
           role: str, experiment_id: str):
    predicted = kinds.predicted(predict_in_batches(model, inputs), record)
    frame = pd.DataFrame({"target": targets, "prediction": predicted})
    # tagged with what it scored, so the run links back to the version (and the UI shows it)
    with mlflow.start_run(run_name=f"{role} v{version.version}", nested=True,
                          experiment_id=experiment_id,  # the parent's: none is set active
                          tags={**owner_tags(), "modelyard.job": "score",
                                "modelyard.model": name, "modelyard.role": role,
                                "modelyard.version": str(version.version),
                                "modelyard.model_uri": f"models:/{name}/{version.version}",
                                describe.NOTE: f"{role}: scored [{name} v{version.version}]"
                                      f"(#/models/{name}/versions/{version.version})"}):
        # explainability needs a model to probe (SHAP); a table of predictions has none
        return mlflow.models.evaluate(data=frame, targets="target", predictions="prediction",
                                      model_type=kinds.model_type(record),
                                      evaluator_config={"log_model_explainability": False})


def _scored_dataset(datamodule, challenger: ModelVersion):
    """The frozen test split both versions are scored on, as an MLflow dataset."""
    from modelyard.tracking.datasets import split_dataset

    file = datamodule.split_file("test")
    recorded = challenger.tags.get("data.path", str(file.parent))
    return split_dataset(file, f"{recorded}/{file.name}", challenger.tags.get("dvc.data_md5"),
                         f"{datamodule.dataset_name}-test")


PENDING = "pending"  # promotion.decision until the champion alias has moved
def promote(client: MlflowClient, name: str, overrides: list[str] | None = None) -> Decision:
    """Gate the challenger under the model's promotion lock; `overrides` (`registry.policy.*`,
    `registry.lock.*`) adjust the policy its record holds and the lock."""
    policy_overrides, lock = split_overrides(overrides)  # a typo is refused before the lock
    require_manage(client.tracking_uri, name, "promote")  # before the lock, runs or tags
    mlflow.set_tracking_uri(client.tracking_uri)  # scoring runs use MLflow's fluent API
    mlflow.set_registry_uri(client.tracking_uri)
    # Scoring wants no autologging. Said now, while this is the only thread: left enabled,
    # `mlflow.models.evaluate` configures it by importing flavours (torch, Lightning) under
    # MLflow's import-hook lock, and the lock's heartbeat thread, importing inside an MLflow
    # request at that moment, deadlocked both (seen in a racing promotion: each process hung).
    mlflow.autolog(disable=True, silent=True)
    with promotion_lock(client, name, **lock):
        return _promote_locked(client, name, policy_overrides)


def split_overrides(overrides: list[str] | None) -> tuple[dict[str, Any], dict[str, float]]:
    """`registry.policy.<key>=<value>` as a dict, and conf/registry's `lock` with any
    `registry.lock.*` applied. Nothing else: the version's record fixes its data and task."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from modelyard.errors import ConfigError, one_line

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides or []))
    except Exception as err:
        raise ConfigError(one_line(err)) from None
    policy, lock = {}, []
    for o in parsed:
        key = o.key_or_group
        if key.startswith("registry.policy.") and key.count(".") == 2:
            policy[key.rpartition(".")[2]] = o.value()
        elif key.startswith("registry.lock."):
            lock.append(o.input_line)
        else:
            raise ConfigError(f"override {o.input_line!r}: promotion reads the version's own "
                              "record (data, task, policy); it takes registry.policy.<key>=... "
                              "and registry.lock.<key>=... only")
    return policy, dict(compose("registry/default", lock).registry.lock)


def lock_settings(overrides: list[str] | None) -> dict[str, float]:
    """conf/registry's `lock` with any `registry.lock.*` override applied."""
    return split_overrides([o for o in overrides or [] if o.startswith("registry.lock.")])[1]


def input_names(version: ModelVersion) -> list[str] | None:
    """The input columns the model's signature names (None: it names none). Types are left
    to the model's own input contract (registry/contract.py), so versions logged before and
    after it compare by names alone."""
    from mlflow.models import get_model_info

    signature = get_model_info(f"models:/{version.name}/{version.version}").signature
    inputs = signature.inputs if signature else None
    return inputs.input_names() if inputs is not None and inputs.has_input_names() else None


def inputs_differ(challenger: ModelVersion, champion: ModelVersion) -> bool:
    """Both versions name their input columns, and not the same ones."""
    mine, theirs = input_names(challenger), input_names(champion)
    return mine is not None and theirs is not None and mine != theirs


def gate_policy(record: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The version's recorded policy with the command line's `registry.policy.*` applied."""
    return policies.resolved({**record["policy"], **overrides}, sorted(record["baselines"]))


def _promote_locked(client: MlflowClient, name: str, overrides: dict[str, Any]) -> Decision:
    aliases = compose("registry/default").registry
    challenger = _alias(client, name, aliases.challenger_alias)
    if challenger is None:
        raise ModelyardError(f"{name} has no version with the alias "
                             f"'{aliases.challenger_alias}'")
    champion = _alias(client, name, aliases.champion_alias)
    if champion is not None and champion.version == challenger.version:
        metric = challenger.tags.get("promotion.metric", "")
        if challenger.tags.get("promotion.decision") == PENDING:  # a promotion cut short
            previous = challenger.tags.get("promotion.previous_champion") or None
            _confirm(client, name, str(challenger.version), previous)
            return Decision(name, True, "finished a promotion that was cut short after the "
                            "champion alias moved", metric, str(challenger.version), previous)
        return Decision(name, False, "the challenger is already champion", metric,
                        str(challenger.version), str(champion.version))

    if champion is not None and inputs_differ(challenger, champion):
        raise ModelyardError(
            f"{name} v{challenger.version} takes other inputs than champion v{champion.version} "
            f"(input schemas differ): register it under a model name of its own"
        )
    # a test row a little outside the train split's range is scored, not refused
    loaded = {"challenger": load_checked(challenger, {"out_of_range": "flag"})}
    record = loaded["challenger"].unwrap_python_model().record
    policy = gate_policy(record, overrides)
    bound = policies.bound(policy, record["baselines"])
    if champion is not None:
        loaded["champion"] = load_checked(champion, {"out_of_range": "flag"})
    datamodule = _frozen_test_datamodule(record, challenger)
    inputs, targets = datamodule.raw_split("test")
    limit = policy["min_improvement"] if champion is not None else None
    thresholds = {} if bound is None and limit is None else {policy["metric"]: MetricThreshold(
        threshold=bound, min_absolute_change=limit,
        greater_is_better=policy["greater_is_better"])}
    # the task's experiment, named, not set as the process's active one: `models sync` goes on
    # to log into other tasks' runs, which an active experiment would refuse
    experiment = client.get_experiment_by_name(record["task"])
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(
        record["task"])
    with mlflow.start_run(experiment_id=experiment_id,
                          run_name=f"promote {name} v{challenger.version}",
                          tags={**owner_tags(), "modelyard.job": "promote",
                                "modelyard.model": name,
                                "modelyard.challenger_version": str(challenger.version),
                                "modelyard.champion_version":
                                    str(champion.version) if champion else "none"}) as scoring:
        mlflow.log_input(_scored_dataset(datamodule, challenger), context="test")
        versions = {"challenger": challenger, "champion": champion}
        results = {role: _score(name, versions[role], model, record, inputs, targets, role,
                                experiment_id)
                   for role, model in loaded.items()}
        try:
            mlflow.validate_evaluation_results(
                thresholds, results["challenger"], results.get("champion"))
            promoted, reason = True, ("passed the policy" if thresholds else
                                      "the first version, and its policy sets no bound")
        except ModelValidationFailedException as err:
            promoted, reason = False, " ".join(str(err).split())
    scores = {role: float(result.metrics[policy["metric"]]) for role, result in results.items()}
    decision = Decision(name, promoted, reason, policy["metric"], str(challenger.version),
                        str(champion.version) if champion else None, scores,
                        scoring.info.run_id)
    _record(client, decision, {**policy, "bound": bound}, datamodule.manifest_sha256 or "",
            aliases.champion_alias)
    return decision


def _record(client: MlflowClient, decision: Decision, policy: dict[str, Any], data_sha: str,
            champion_alias: str) -> None:
    audit = {
        "decision": "promoted" if decision.promoted else "rejected",
        "time": _now(),
        "metric": decision.metric,
        "challenger_version": decision.challenger,
        "champion_version": decision.champion or "",
        "challenger_score": f"{decision.scores['challenger']:.6g}",
        "champion_score": f"{decision.scores['champion']:.6g}" if decision.champion else "",
        "test_data_sha256": data_sha,
        "policy": json.dumps(policy, sort_keys=True),
        "reason": decision.reason[:4000],
        "run_id": decision.scoring_run or "",
    }
    # Ordered so that a crash between any two calls leaves no tag claiming what did not happen:
    # a promotion is written "pending" until the alias has moved, and a re-run confirms it.
    if decision.promoted:
        audit["decision"] = PENDING
        audit["previous_champion"] = decision.champion or ""
    for key, value in audit.items():
        client.set_model_version_tag(decision.name, decision.challenger, f"promotion.{key}", value)
    if decision.promoted:
        client.set_registered_model_alias(decision.name, champion_alias, decision.challenger)
        _confirm(client, decision.name, decision.challenger, decision.champion)
    else:
        _describe_decision(client, decision.name, decision.challenger)
        if decision.champion:
            client.set_model_version_tag(decision.name, decision.champion,
                                         f"challenged_by.v{decision.challenger}", "rejected")


def _confirm(client: MlflowClient, name: str, promoted: str, replaced: str | None) -> None:
    """The alias has moved: say so on both versions."""
    if replaced:
        client.set_model_version_tag(name, replaced, f"challenged_by.v{promoted}", "promoted")
    client.set_model_version_tag(name, promoted, "promotion.decision", "promoted")
    _describe_decision(client, name, promoted)


def _describe_decision(client: MlflowClient, name: str, version: str) -> None:
    """The decision, as its tags now say, appended to the version's description (once: a
    promotion finished after a crash does not repeat it)."""
    current = client.get_model_version(name, version)
    run_id = current.tags.get("promotion.run_id")
    experiment = client.get_run(run_id).info.experiment_id if run_id else None
    section = describe.decision_section(current.tags, run_id, experiment)
    text = current.description or ""
    if section.strip() not in text:
        client.update_model_version(name, version, f"{text.rstrip()}\n{section}".lstrip())


ROLLBACK_PENDING = "rollback.pending"  # "<demoted>-><restored>" while a rollback runs


def rollback(client: MlflowClient, name: str, champion_alias: str = "champion",
             overrides: list[str] | None = None) -> tuple[str, str]:
    """Give the champion alias back to the version it replaced; return (from, to).

    The model carries `rollback.pending` from before the alias moves until the versions say so,
    so a rollback cut short in between is finished by the next one, not taken one step further.
    """
    require_manage(client.tracking_uri, name, "roll back")
    with promotion_lock(client, name, **lock_settings(overrides)):
        champion = _alias(client, name, champion_alias)
        if champion is None:
            raise ModelyardError(f"{name} has no champion to roll back")
        pending = client.get_registered_model(name).tags.get(ROLLBACK_PENDING, "")
        demoted, _, restored = pending.partition("->")
        if restored == str(champion.version):
            _finish_rollback(client, name, demoted, restored)
            return demoted, restored
        previous = champion.tags.get("promotion.previous_champion")
        if not previous:
            raise ModelyardError(f"{name} v{champion.version} replaced no earlier champion")
        client.set_registered_model_tag(name, ROLLBACK_PENDING, f"{champion.version}->{previous}")
        client.set_registered_model_alias(name, champion_alias, previous)
        _finish_rollback(client, name, str(champion.version), previous)
        return str(champion.version), previous


def _finish_rollback(client: MlflowClient, name: str, demoted: str, restored: str) -> None:
    now = _now()
    client.set_model_version_tag(name, demoted, "rollback.demoted_at", now)
    client.set_model_version_tag(name, restored, "rollback.restored_at", now)
    client.delete_registered_model_tag(name, ROLLBACK_PENDING)
