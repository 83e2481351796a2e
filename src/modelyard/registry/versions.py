"""Reading the registry: which version has an alias, and every version as a table row.
Light on imports (MLflow only), so `modelyard models list` answers without torch."""

from __future__ import annotations

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient


def alias_version(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def list_versions(client: MlflowClient, name: str | None = None) -> list[dict[str, str]]:
    """Every registered version (of one model, or all), newest first, as table rows."""
    names = [name] if name else sorted(m.name for m in client.search_registered_models())
    rows = []
    for model_name_ in names:
        aliases = client.get_registered_model(model_name_).aliases
        by_version: dict[str, list[str]] = {}
        for alias, version in aliases.items():
            by_version.setdefault(str(version), []).append(alias)
        versions = client.search_model_versions(f"name='{model_name_}'")
        for v in sorted(versions, key=lambda v: int(v.version), reverse=True):
            metrics = {k.removeprefix("metric."): val for k, val in v.tags.items()
                       if k.startswith("metric.test_") and not k.endswith("_loss")}
            rows.append({
                "model": model_name_,
                "version": str(v.version),
                "aliases": ",".join(sorted(by_version.get(str(v.version), []))),
                "metrics": " ".join(f"{k}={val}" for k, val in sorted(metrics.items())),
                "data": (v.tags.get("dvc.data_md5") or v.tags.get("data.manifest_sha256", ""))[:12],
                "git": v.tags.get("git.sha", "")[:8],
            })
    return rows
