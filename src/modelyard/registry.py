"""The MLflow model registry: log a run's model as pyfunc, register it with its lineage,
list what is registered. One registered model per task; a new version is `challenger`."""

from __future__ import annotations

import hashlib
from importlib import metadata
from pathlib import Path
from typing import Any

import lightning as L
import mlflow
from hydra.utils import get_class
from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

import modelyard
from modelyard.tracking import resolved_yaml

MAX_TAG_CHARS = 5000  # MLflow's limit for a model version tag value
# What a served model imports; exact versions keep log_model fast (no inference of them).
PIP_PACKAGES = ("torch", "lightning", "torchmetrics", "hydra-core", "omegaconf", "mlflow",
                "numpy", "pandas", "matplotlib", "scikit-learn")


def weights_sha256(model: L.LightningModule) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def version_tags(cfg: DictConfig, run_tags: dict[str, str], metrics: dict[str, float],
                 run_id: str, weights: str) -> dict[str, str]:
    resolved = resolved_yaml(cfg)
    tags = {
        "source_run": run_id,
        "weights_sha256": weights,
        "config_sha256": hashlib.sha256(resolved.encode()).hexdigest(),
        "config": resolved if len(resolved) <= MAX_TAG_CHARS else "see config.yaml of source_run",
        **{k: v for k, v in run_tags.items()
           if k.startswith(("git.", "data.", "dvc.", "seed", "modelyard."))},
        **{f"metric.{k}": f"{v:.6g}" for k, v in metrics.items()},
    }
    return {k: str(v) for k, v in tags.items()}


def log_and_register(
    cfg: DictConfig,
    run_id: str,
    model: L.LightningModule,
    checkpoint: str,
    datamodule: Any,
    run_tags: dict[str, str],
    metrics: dict[str, float],
) -> ModelVersion | None:
    """Log the pyfunc model into the run; register it unless config says not to.

    The same weights registered again make no new version: the existing one is returned.
    """
    entry = cfg.registry.models[cfg.task]
    wrapper = get_class(entry.wrapper)
    signature, example = wrapper.describe(model, datamodule)
    with mlflow.start_run(run_id=run_id):
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=wrapper(),
            artifacts={"checkpoint": checkpoint},
            model_config={"model_class": f"{type(model).__module__}.{type(model).__qualname__}"},
            code_paths=[str(Path(modelyard.__file__).parent)],
            signature=signature,
            input_example=example,
            pip_requirements=[f"{p}=={metadata.version(p)}" for p in PIP_PACKAGES],
        )
    if not cfg.registry.register:
        return None
    weights = weights_sha256(model)
    client = MlflowClient()
    for version in client.search_model_versions(f"name='{entry.name}'"):
        if version.tags.get("weights_sha256") == weights:
            return version
    tags = version_tags(cfg, run_tags, metrics, run_id, weights)
    version = mlflow.register_model(info.model_uri, entry.name, tags=tags)
    client.set_registered_model_alias(entry.name, cfg.registry.challenger_alias, version.version)
    return client.get_model_version(entry.name, version.version)


def list_versions(name: str | None = None) -> list[dict[str, str]]:
    """Every registered version (of one model, or all), newest first, as table rows."""
    client = MlflowClient()
    names = [name] if name else sorted(m.name for m in client.search_registered_models())
    rows = []
    for model_name in names:
        aliases = client.get_registered_model(model_name).aliases
        by_version: dict[str, list[str]] = {}
        for alias, version in aliases.items():
            by_version.setdefault(str(version), []).append(alias)
        versions = client.search_model_versions(f"name='{model_name}'")
        for v in sorted(versions, key=lambda v: int(v.version), reverse=True):
            metrics = {k.removeprefix("metric."): val for k, val in v.tags.items()
                       if k.startswith("metric.test_") and not k.endswith("_loss")}
            rows.append({
                "model": model_name,
                "version": str(v.version),
                "aliases": ",".join(sorted(by_version.get(str(v.version), []))),
                "metrics": " ".join(f"{k}={val}" for k, val in sorted(metrics.items())),
                "data": (v.tags.get("dvc.data_md5") or v.tags.get("data.manifest_sha256", ""))[:12],
                "git": v.tags.get("git.sha", "")[:8],
            })
    return rows
