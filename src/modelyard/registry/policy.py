"""The promotion policy (`registry.policy`): checked when a task is declared, recorded with each
version, and turned into the one `MetricThreshold` the gate hands to
`mlflow.validate_evaluation_results`.

Bounds come from an absolute `floor` (in the units of the data the task declares) and from a
baseline the version was measured against on its own test split (`baseline`,
`baseline_margin`), so a model trained on other data needs no floor in another task's units.
"""

from __future__ import annotations

from typing import Any

from modelyard.errors import ConfigError

# mlflow.models.evaluate's metrics: model type, whether greater is better, and the same
# quantity as modelyard's runs and baselines record it (None: defined otherwise there, e.g.
# MLflow's F1 is not torchmetrics' macro F1, so no baseline compares on it)
METRICS = {
    "mean_squared_error": ("regressor", False, "test_mse"),
    "root_mean_squared_error": ("regressor", False, None),
    "mean_absolute_error": ("regressor", False, "test_mae"),
    "mean_absolute_percentage_error": ("regressor", False, None),
    "max_error": ("regressor", False, None),
    "r2_score": ("regressor", True, "test_r2"),
    "accuracy_score": ("classifier", True, "test_acc"),
    "f1_score": ("classifier", True, None),
    "precision_score": ("classifier", True, None),
    "recall_score": ("classifier", True, None),
}
KEYS = ("metric", "greater_is_better", "min_improvement", "baseline", "baseline_margin", "floor")


def resolved(policy: dict[str, Any], baselines: list[str] | None) -> dict[str, Any]:
    """The policy checked, with `greater_is_better` filled in from the metric; `baselines`:
    the names of the task's baselines (None: not checked, for a job that registers nothing)."""
    unknown = sorted(set(policy) - set(KEYS))
    if unknown:
        raise ConfigError(f"registry.policy has no key(s) {', '.join(unknown)}; it takes "
                          f"{', '.join(KEYS)}")
    metric = policy.get("metric")
    if metric not in METRICS:
        raise ConfigError(f"registry.policy.metric {metric!r} is not one mlflow.models.evaluate "
                          f"reports: {', '.join(METRICS)}")
    _, greater, recorded = METRICS[metric]
    given = policy.get("greater_is_better")
    if given is not None and bool(given) != greater:
        raise ConfigError(f"registry.policy.greater_is_better={given} contradicts {metric}, "
                          f"where {'greater' if greater else 'lower'} is better")
    baseline = policy.get("baseline")
    if baseline is not None:
        if baselines is not None and baseline not in baselines:
            raise ConfigError(f"registry.policy.baseline {baseline!r} is not one of the task's "
                              f"baselines ({', '.join(baselines) or 'it has none'}: `baseline:` "
                              "in its experiment config)")
        if recorded is None:
            usable = ", ".join(m for m, (_, _, r) in METRICS.items() if r)
            raise ConfigError(f"registry.policy.baseline compares on the metric, and baselines "
                              f"record no {metric}: use one of {usable}")
    for key in ("min_improvement", "baseline_margin", "floor"):
        value = policy.get(key)
        if value is not None and not isinstance(value, int | float):
            raise ConfigError(f"registry.policy.{key} must be a number, got {value!r}")
    return {**{k: policy.get(k) for k in KEYS}, "greater_is_better": greater,
            "min_improvement": policy.get("min_improvement") or 0.0,
            "baseline_margin": policy.get("baseline_margin") or 0.0}


def model_type(metric: str) -> str:
    return METRICS[metric][0]


def bound(policy: dict[str, Any], baselines: dict[str, dict[str, float]]) -> float | None:
    """The one bound the challenger's score must clear: the stricter of the floor and the
    baseline's score moved by the margin (None: neither is set)."""
    greater = policy["greater_is_better"]
    bounds = [] if policy.get("floor") is None else [float(policy["floor"])]
    if policy.get("baseline"):
        key = METRICS[policy["metric"]][2]
        score = baselines.get(policy["baseline"], {}).get(key)
        if score is None:
            raise ConfigError(f"the version records no {key} of baseline "
                              f"{policy['baseline']!r}, which its policy compares with")
        shift = policy["baseline_margin"] * abs(score)
        bounds.append(score + shift if greater else score - shift)
    if not bounds:
        return None
    return max(bounds) if greater else min(bounds)
