"""Tasks, discovered: every `conf/experiment/<task>.yaml` is one, and declares all of it — the
model and data (its defaults), the registered model (`registry.model`), how it is served
(`registry.serving.kind`) and its promotion gate (`registry.policy`). Registry, serving, the
pipeline and the tests ask this module; nothing else keeps a list of tasks.

`check` is the pre-flight of a declaration: it runs before torch loads, so a task that could
not be registered, served or promoted is refused in one line before anything trains.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from modelyard import project
from modelyard.errors import ConfigError


def names(start: Path | None = None) -> list[str]:
    """Every task of the project: its experiment configs' names."""
    return sorted(p.stem for p in (project.conf_dir(start) / "experiment").glob("*.yaml"))


def declaration(task: str, overrides: list[str] | None = None) -> DictConfig:
    """The task's training config as its experiment declares it (composed once per project
    and process: treat it as read-only)."""
    return _declaration(str(project.conf_dir()), task, tuple(overrides or ()))


@functools.cache
def _declaration(conf_dir: str, task: str, overrides: tuple[str, ...]) -> DictConfig:
    from modelyard.config import compose

    if task not in names():
        raise ConfigError(f"unknown task {task!r}: one of {', '.join(names())} "
                          "(conf/experiment/<task>.yaml)")
    cfg = compose("train", [f"experiment={task}", *overrides])
    OmegaConf.set_readonly(cfg, True)
    return cfg


def registered_models() -> dict[str, str]:
    """task -> the registered model it declares (the team's models)."""
    return {task: str(declaration(task).registry.model) for task in names()}


LOADING = ("batch_size", "num_workers")  # data config keys that do not change the data


def declared_data(cfg: DictConfig) -> DictConfig:
    """The data config the run's task declares, resolved under the run's own `paths`."""
    return OmegaConf.create({
        "paths": OmegaConf.to_container(cfg.paths, resolve=False),
        "data": OmegaConf.to_container(declaration(cfg.task).data, resolve=False),
    })


def own_data(cfg: DictConfig) -> bool:
    """Whether a run's data is not the data its task declares: `data.path` names another
    directory than the declared one."""
    root = Path(cfg.paths.root_dir)
    return (root / declared_data(cfg).data.path).resolve() != (root / cfg.data.path).resolve()


def data_key(cfg: DictConfig) -> str:
    """"" for the task's own data; else `<directory>-<sha256 of the data config>`, which tells
    one dataset (its directory, columns, target, vocabulary settings) from another. How it is
    batched or loaded does not make other data."""
    import hashlib
    import json

    root = Path(cfg.paths.root_dir)

    def fingerprint(data: DictConfig) -> str:
        values = {k: v for k, v in OmegaConf.to_container(data, resolve=True).items()
                  if k not in LOADING}
        values["path"] = str((root / values["path"]).resolve())
        return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()

    mine = fingerprint(cfg.data)
    if mine == fingerprint(declared_data(cfg).data):
        return ""
    return f"{Path(cfg.data.path).name}-{mine[:8]}"


def study_name(space: str, cfg: DictConfig) -> str:
    """A sweep's study: its search space's name, and the data's key when the data is not the
    task's own, so a study never mixes trials of two datasets."""
    key = data_key(cfg)
    return f"{space}@{key}" if key else space


def baseline_names(cfg: DictConfig) -> list[str]:
    """The baselines a run measures (`baseline:` entries not switched off with null)."""
    return sorted(k for k, v in (cfg.get("baseline") or {}).items() if v is not None)


def check(cfg: DictConfig) -> None:
    """The task's declaration is complete: a registered model, a known serving kind, a policy
    the gate can apply (its metric, its baseline among the task's). No torch, no data."""
    from modelyard.registry.policy import resolved

    experiment = project.conf_dir() / "experiment" / f"{cfg.task}.yaml"
    if not experiment.is_file():
        raise ConfigError(f"task {cfg.task!r} has no {experiment.relative_to(project.root())}: "
                          "a task is named after its experiment config")
    registry = cfg.registry
    if not str(registry.get("model") or "").strip():
        raise ConfigError(f"{cfg.task}: registry.model is empty: its experiment config names "
                          "the registered model")
    kind_name(cfg)
    # a job that registers nothing (a sweep's trials) may leave the baselines out
    resolved(OmegaConf.to_container(registry.policy, resolve=True),
             baseline_names(cfg) if registry.get("register", True) else None)


def kind_name(cfg: DictConfig) -> str:
    """The task's serving kind, known: shipped (registry/kinds.py) or declared in the model's
    own module, which is imported (with torch) only for a kind modelyard does not ship."""
    import importlib

    from modelyard.registry.kinds import Kind, kind_named

    name = str(cfg.registry.serving.kind)
    if name not in Kind.known:
        module = str(cfg.model._target_).rpartition(".")[0]
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise ConfigError(f"model module {module}: {err}") from None
    kind_named(name)
    return name


def check_data(cfg: DictConfig, datamodule: Any) -> None:
    """What the declaration says fits the data: the kind takes its inputs, the policy's metric
    suits its target (a value or classes). After the data is read, before training."""
    from modelyard.registry.kinds import kind_named, model_type
    from modelyard.registry.policy import METRICS

    kind = kind_named(kind_name(cfg))
    problem = kind.refuses(datamodule)
    if problem:
        raise ConfigError(f"{cfg.task}: serving kind {kind.name!r} {problem}")
    metric = str(cfg.registry.policy.metric)
    wanted = model_type({"classes": datamodule.class_names})
    if METRICS[metric][0] != wanted:
        fitting = ", ".join(m for m, (t, _, _) in METRICS.items() if t == wanted)
        raise ConfigError(f"{cfg.task}: registry.policy.metric {metric} is a "
                          f"{METRICS[metric][0]}'s, and {datamodule.target_name!r} makes this a "
                          f"{wanted}: use one of {fitting}")
