"""Register a trained model: log it as a pyfunc that takes raw inputs, make it a version of
the task's registered model with its lineage, and give it the `challenger` alias.

Idempotent, so an interrupted registration is finished by running it again: the same weights
never make a second version, and a version left without its alias gets it. A model file with
no training run in this store (pulled from a DVC remote, restored from DVC's run-cache) is
registered from a run of its own that says so.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

from hydra.utils import get_class
from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

import modelyard
from modelyard.registry.kinds import Kind, kind_named
from modelyard.registry.packaging import write_model_files
from modelyard.registry.versions import alias_version
from modelyard.tracking import describe, lineage, store
from modelyard.tracking.owner import end_orphaned_runs, owner_tags
from modelyard.tracking.run import run_that_trained
from modelyard.training.export import load_model, weights_sha256

MODEL_CODE = Path(__file__).with_name("model_code.py")  # MLflow's models-from-code file
# What a served model imports, pinned to the public release of what is installed: a local
# version label such as torch's "+cpu" is not on PyPI, so a stranger could not install it.
PIP_PACKAGES = ("torch", "lightning", "torchmetrics", "hydra-core", "omegaconf", "mlflow",
                "numpy", "pandas", "scikit-learn")


def requirement(package: str) -> str:
    return f"{package}=={metadata.version(package).split('+')[0]}"


def model_name(cfg: DictConfig) -> str:
    """`registry.name`, else the task's registered model; data other than the task's own gets
    a model of its own (`<model>-<data directory>`), never the shipped one's aliases."""
    if cfg.registry.get("name"):
        return str(cfg.registry.name)
    from modelyard import tasks

    base = str(cfg.registry.model)
    return f"{base}-{Path(cfg.data.path).resolve().name}" if tasks.own_data(cfg) else base


def recorded_policy(cfg: DictConfig) -> dict[str, Any]:
    """The policy a version is registered with: the config's, resolved. The task's absolute
    floor is in the units of its own data, so a version of other data is recorded without it
    unless the command line set another; its baselines, scored on its own splits, still hold."""
    from modelyard import tasks
    from modelyard.registry.policy import resolved

    policy = resolved(OmegaConf.to_container(cfg.registry.policy, resolve=True),
                      tasks.baseline_names(cfg))
    if tasks.own_data(cfg) and policy["floor"] == tasks.declaration(cfg.task).registry.policy.floor:
        policy["floor"] = None
    return policy


def version_tags(run: Run, weights: str) -> dict[str, str]:
    tags = {
        "source_run": run.info.run_id,
        "weights_sha256": weights,
        **{k: v for k, v in run.data.tags.items()
           if k.startswith(("git.", "data.", "dvc.", "seed", "modelyard.", "config",
                            "registered_from"))},
        **{f"metric.{k}": f"{v:.6g}" for k, v in run.data.metrics.items()
           if k.startswith(("test_", "baseline_"))},
    }
    return {k: str(v) for k, v in tags.items()}


def import_run(client: MlflowClient, cfg: DictConfig, model: Any, model_file: Path,
               datamodule: Any, weights: str) -> Run:
    """A run for a model file trained elsewhere: lineage of this checkout, the file's own
    hyperparameters, its baselines on the same splits, and where it came from."""
    from modelyard.training.build import baseline_metrics

    root = Path(cfg.paths.root_dir)
    experiment = client.get_experiment_by_name(cfg.task)
    experiment_id = (experiment.experiment_id if experiment else
                     client.create_experiment(cfg.task, cfg.logger.artifact_location))
    tags = {
        **lineage.lineage_tags(root, cfg.task, cfg.data.path, cfg.seed,
                               datamodule.manifest_sha256),
        "modelyard.job": "register",
        "registered_from": lineage.relative_to_project(model_file, root),
        "weights_sha256": weights,
    }
    run = client.create_run(experiment_id, run_name=f"{cfg.task}-imported-{weights[:6]}",
                            tags=tags)
    for key, value in model.hparams.items():
        if isinstance(value, int | float | str):
            client.log_param(run.info.run_id, f"model.{key}", value)
    for key, value in baseline_metrics(cfg, datamodule).items():
        client.log_metric(run.info.run_id, key, value)
    client.set_terminated(run.info.run_id, "FINISHED")
    return client.get_run(run.info.run_id)


def log_pyfunc(tracking_uri: str, run_id: str, kind: type[Kind], model: Any, datamodule: Any,
               name: str, configured: set[str], weights: str, task_record: dict[str, Any],
               serving: dict[str, Any] | None = None) -> str:
    """Log the model into the run as code (registry/model_code.py and the project's source),
    its weights as a state dict, its preprocessing, input contract and record as JSON; return
    its model URI. `configured`: the hyperparameter names the model config sets; `serving`: the
    input limits (conf/registry `serving:`), kept in the model config."""
    import tempfile
    from dataclasses import asdict

    import mlflow

    from modelyard.registry import record
    from modelyard.registry.contract import Limits

    # checked before anything is logged; only the limits the model reads go into its config
    # (MLflow also logs the config as run params, which `models reproduce` leaves out)
    limits = asdict(Limits.from_config(serving or {}))
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run(run_id=run_id,
                                                                tags=owner_tags()):
        files = write_model_files(model, Path(tmp), configured, kind.input_contract(datamodule))
        files[record.RECORD] = record.write(task_record, Path(tmp))
        info = mlflow.pyfunc.log_model(
            name=name,
            python_model=str(MODEL_CODE),
            artifacts=files,
            model_config={
                **limits,
                "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
                "weights_sha256": weights,  # read_model refuses other weights
            },
            code_paths=[str(Path(modelyard.__file__).parent)],
            signature=kind.signature(datamodule),
            input_example=kind.example(datamodule),
            pip_requirements=[requirement(p) for p in PIP_PACKAGES],
        )
    return info.model_uri


def logged_with_record(tracking_uri: str, version: ModelVersion) -> bool:
    """Whether a version is code plus a state dict and its record: one registered before
    modelyard logged models so (a pickle, or code without task.json) is not one this code
    serves, so the same weights get a new version."""
    import mlflow
    from mlflow.models import get_model_info

    from modelyard.registry.record import RECORD

    mlflow.set_registry_uri(tracking_uri)
    info = get_model_info(f"models:/{version.name}/{version.version}")  # reads MLmodel only
    pyfunc = info.flavors.get("python_function", {})
    return "model_code_path" in pyfunc and RECORD in (pyfunc.get("artifacts") or {})


def describe_version(client: MlflowClient, version: ModelVersion, run: Run, task: str) -> None:
    """The version page's description: test metrics beside the baseline's, data, commit,
    and links to the training run and its resolved config."""
    client.update_model_version(version.name, version.version, describe.version_description(
        task, run.info.run_name, run.info.experiment_id, run.info.run_id, run.data.tags,
        run.data.metrics))


def register(cfg: DictConfig, model_file: Path, datamodule: Any,
             run_id: str | None = None) -> ModelVersion:
    """Make `model_file` a version of the task's model carrying `challenger` (or already
    `champion`); `run_id`: the run that trained it, when the caller knows it."""
    from modelyard import tasks
    from modelyard.registry import record

    tracking_uri = cfg.logger.tracking_uri
    client = store.client(tracking_uri)
    end_orphaned_runs(client)  # a registration killed earlier left the training run RUNNING
    name, registry = model_name(cfg), cfg.registry
    kind = kind_named(tasks.kind_name(cfg))
    policy = recorded_policy(cfg)
    model = load_model(get_class(cfg.model._target_), Path(model_file))
    weights = weights_sha256(model.state_dict())
    version = next((v for v in client.search_model_versions(f"name='{name}'")
                    if v.tags.get("weights_sha256") == weights
                    and logged_with_record(tracking_uri, v)), None)
    if version is None:
        run = (client.get_run(run_id) if run_id else None) or run_that_trained(
            client, cfg.task, weights) or import_run(client, cfg, model, Path(model_file),
                                                     datamodule, weights)
        task_record = record.make_record(
            cfg.task, kind.name, datamodule, record.data_config(cfg, Path(cfg.paths.root_dir)),
            policy, record.baseline_scores(run.data.metrics))
        configured = set(cfg.model) - {"_target_", "_partial_"}
        serving = {k: v for k, v in OmegaConf.to_container(registry.serving).items()
                   if k != "kind"}
        uri = log_pyfunc(tracking_uri, run.info.run_id, kind, model, datamodule, cfg.task,
                         configured, weights, task_record, serving)
        import mlflow

        version = mlflow.register_model(uri, name, tags=version_tags(run, weights))
        describe_version(client, version, run, cfg.task)
    if not client.get_registered_model(name).description:
        client.update_registered_model(name, describe.model_description(
            cfg.task, describe.module_doc(get_class(cfg.model._target_)),
            policy, registry.challenger_alias, registry.champion_alias))
    champion = alias_version(client, name, registry.champion_alias)
    if champion is None or str(champion.version) != str(version.version):
        client.set_registered_model_alias(name, registry.challenger_alias, version.version)
    return client.get_model_version(name, version.version)
