"""Markdown descriptions the MLflow UI shows on a run, a registered model and a model version:
what a person looks for first (what it is, how good, on which data and code, what the gate
decided), with links inside the UI. Pure functions of tags and metrics."""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping

CONFIG_ARTIFACT = "config.yaml"
NOTE = "mlflow.note.content"  # a run's description in the MLflow UI (markdown)


def config_uri(run_id: str) -> str:
    """The short tag that points at the resolved config (the artifact holds the whole)."""
    return f"runs:/{run_id}/{CONFIG_ARTIFACT}"


def run_link(experiment_id: str, run_id: str, text: str) -> str:
    return f"[{text}](#/experiments/{experiment_id}/runs/{run_id})"


def artifact_link(experiment_id: str, run_id: str, path: str, text: str) -> str:
    return f"[{text}](#/experiments/{experiment_id}/runs/{run_id}/artifactPath/{path})"


def _short(value: str | None, length: int = 12) -> str:
    return f"`{value[:length]}…`" if value and len(value) > length else f"`{value}`"


def lineage_lines(tags: Mapping[str, str]) -> list[str]:
    """Data and code, from a run's lineage tags (tracking/lineage.py)."""
    data = f"- **Data** `{tags.get('data.path', '?')}` · manifest sha256 " \
           f"{_short(tags.get('data.manifest_sha256'))}"
    if tags.get("dvc.data_md5"):
        data += f" · DVC md5 {_short(tags['dvc.data_md5'])}"
    dirty = tags.get("git.dirty")
    state = {"true": "with uncommitted changes to code or config", "false": "clean"}.get(
        dirty or "", "unknown state")
    lines = [data, f"- **Commit** {_short(tags.get('git.sha'))} ({state})"]
    if tags.get("command"):
        lines.append(f"- **Command** `{tags['command']}`")
    if tags.get("dvc.stage"):
        lines.append(f"- **DVC stage** `{tags['dvc.stage']}`"
                     + (f" · experiment `{tags['dvc.exp_name']}`" if tags.get("dvc.exp_name")
                        else ""))
    return lines


def run_description(task: str, job: str, experiment_id: str, run_id: str,
                    tags: Mapping[str, str]) -> str:
    config = artifact_link(experiment_id, run_id, CONFIG_ARTIFACT, "resolved config")
    sha = tags.get("config_sha256")
    return "\n".join([
        f"**{task}** {job} run · {config} (`{CONFIG_ARTIFACT}`"
        + (f", sha256 {_short(sha)})" if sha else ")"),
        "",
        *lineage_lines(tags),
    ])


BASELINE = re.compile(r"baseline_(?:(?P<name>.+)_)?test_(?P<metric>.+)")


def metrics_table(metrics: Mapping[str, float]) -> list[str]:
    """Each test metric beside each baseline's (`baseline_<name>_test_<metric>`; older runs
    recorded one unnamed `baseline_test_<metric>`), when the run has them."""
    tests = sorted(k.removeprefix("test_") for k in metrics if k.startswith("test_"))
    if not tests:
        return ["_no test metrics recorded_"]
    baselines: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        if match := BASELINE.fullmatch(key):
            name = (match["name"] or "baseline").replace("_", " ")
            baselines.setdefault(name, {})[match["metric"]] = value
    names = sorted(baselines)
    rows = ["| test metric | this model | " + " | ".join(f"baseline: {n}" for n in names) + " |",
            "|---|---:|" + "---:|" * len(names)]
    for metric in tests:
        cells = [f"{baselines[n][metric]:.4f}" if metric in baselines[n] else "–"
                 for n in names]
        rows.append(f"| {metric} | {metrics['test_' + metric]:.4f} | " + " | ".join(cells)
                    + " |")
    return rows


def version_description(task: str, run_name: str, experiment_id: str, run_id: str,
                        tags: Mapping[str, str], metrics: Mapping[str, float]) -> str:
    trained = run_link(experiment_id, run_id, run_name or run_id)
    config = artifact_link(experiment_id, run_id, CONFIG_ARTIFACT, "resolved config")
    return "\n".join([
        f"**{task}** trained by run {trained} · {config}",
        "",
        *metrics_table(metrics),
        "",
        *lineage_lines(tags),
    ])


def policy_text(policy: Mapping[str, object]) -> str:
    """A policy (registry/policy.py) in words."""
    better = "higher" if policy.get("greater_is_better") else "lower"
    bounds = []
    if policy.get("floor") is not None:
        bounds.append(f"clear {policy['floor']}")
    if policy.get("baseline"):
        margin = float(policy.get("baseline_margin") or 0)
        by = (f" by {margin:.0%} of its score" if margin > 0 else
              f" or trail it by at most {-margin:.0%}" if margin < 0 else "")
        bounds.append(f"beat the `{policy['baseline']}` baseline on the same test split{by}")
    bounds.append(f"beat the champion by {policy.get('min_improvement')}")
    return f"`{policy.get('metric')}` ({better} is better) must {', '.join(bounds)}"


def model_description(task: str, model_doc: str, policy: Mapping[str, object],
                      challenger_alias: str, champion_alias: str) -> str:
    return "\n".join([
        f"**{task}**: {model_doc}",
        "",
        f"- `@{challenger_alias}`: the newest registered version, waiting for the gate",
        f"- `@{champion_alias}`: what serving loads (`models:/<name>@{champion_alias}`)",
        f"- **Promotion gate** (the policy each version is registered with): both scored with "
        f"`mlflow.models.evaluate` on the challenger's frozen test split; {policy_text(policy)}",
    ])


def decision_section(tags: Mapping[str, str], scoring_run: str | None = None,
                     experiment_id: str | None = None) -> str:
    """The gate's decision from a version's `promotion.*` tags."""
    decision = tags.get("promotion.decision", "?")
    metric = tags.get("promotion.metric", "?")
    champion = tags.get("promotion.champion_version")
    lines = [
        "",
        f"#### Promotion {tags.get('promotion.time', '')}: **{decision.upper()}**",
        "",
        f"- `{metric}`: this version {tags.get('promotion.challenger_score', '?')}"
        + (f", champion v{champion} {tags.get('promotion.champion_score', '?')}" if champion
           else " (no champion yet)"),
        f"- test data sha256 {_short(tags.get('promotion.test_data_sha256'))}",
        f"- policy `{tags.get('promotion.policy', '')}`",
        f"- reason: {tags.get('promotion.reason', '')}",
    ]
    if scoring_run and experiment_id:
        lines.append(f"- scoring: {run_link(experiment_id, scoring_run, 'promotion run')}")
    return "\n".join(lines)


def first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0] if (doc or "").strip() else ""


def module_doc(obj: object) -> str:
    """The first line of the docstring of the module that defines `obj`."""
    return first_line(sys.modules[type(obj).__module__].__doc__
                      if not isinstance(obj, type) else sys.modules[obj.__module__].__doc__)
