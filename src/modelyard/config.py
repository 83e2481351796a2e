"""The configs' resolvers, composition from the project's conf/, and a pre-flight check of
overrides. Entry points call `register_resolvers()` before Hydra composes anything."""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Callable

from omegaconf import DictConfig, OmegaConf

from modelyard import project
from modelyard.errors import (
    SIGNAL_EXITS,
    ConfigError,
    exit_on_user_error,
    interrupting_signal,
    one_line,
)
from modelyard.quiet import silence_library_notices
from modelyard.tracking.store import local_artifact_root


def launcher_env(key: str) -> int | str:
    """Nodes / processes per node as the launcher set them: torchrun, else SLURM, else one."""
    env = os.environ
    if key == "num_nodes":
        if "LOCAL_WORLD_SIZE" in env and "WORLD_SIZE" in env:
            return int(env["WORLD_SIZE"]) // int(env["LOCAL_WORLD_SIZE"])
        return int(env.get("SLURM_NNODES", 1))
    if key == "devices":
        per_node = env.get("LOCAL_WORLD_SIZE") or env.get("SLURM_NTASKS_PER_NODE")
        return int(per_node) if per_node else "auto"
    raise ValueError(f"launcher_env: unknown key {key!r} (num_nodes or devices)")


def register_resolvers() -> None:
    """The `${name:}` resolvers conf/ uses and the schemas in Hydra's ConfigStore;
    idempotent."""
    from modelyard import schema

    schema.register()
    resolvers = {
        "project_root": lambda: str(project.root()),
        # the project's shared state: the queuing repository for a queued DVC experiment
        "project_home": lambda: str(project.home(project.root())),
        "cwd": os.getcwd,
        "local_artifact_root": local_artifact_root,
        "launcher_env": launcher_env,
    }
    for name, resolver in resolvers.items():
        OmegaConf.register_new_resolver(name, resolver, replace=True)
    OmegaConf.register_new_resolver("study_name", study_name, replace=True)
    # use_cache: one value per config, so every reference to it within a run agrees
    OmegaConf.register_new_resolver(
        "unique_suffix", lambda: secrets.token_hex(3), use_cache=True, replace=True
    )


def study_name(space: str, *, _root_: DictConfig) -> str:
    """`${study_name:<space>}`: a sweep's default study (tasks.study_name)."""
    from modelyard import tasks

    return tasks.study_name(space, _root_)


def config_groups() -> set[str]:
    return {p.name for p in project.conf_dir().iterdir() if p.is_dir()}


def compose(config_name: str, overrides: list[str] | None = None) -> DictConfig:
    """Compose a root config with Hydra's compose API, turning its errors into ConfigError."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    register_resolvers()
    try:
        if GlobalHydra.instance().is_initialized():  # inside a job: the project's conf already
            return hydra_compose(config_name=config_name, overrides=list(overrides or []))
        with initialize_config_dir(str(project.conf_dir()), version_base="1.3"):
            return hydra_compose(config_name=config_name, overrides=list(overrides or []))
    except (HydraException, OmegaConfBaseException) as err:
        cause = f": {one_line(err.__cause__)}" if err.__cause__ else ""
        raise ConfigError(one_line(f"{one_line(err)}{cause}")) from None


def _kind(value: object) -> str | None:
    """The coarse type an override must keep: numbers stay numbers, flags stay flags."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list | tuple) or OmegaConf.is_list(value):
        return "list"
    if isinstance(value, dict) or OmegaConf.is_dict(value):
        return "mapping"
    return None  # strings may legitimately take any spelling


def _select(cfg: DictConfig, key: str) -> object:
    try:
        return OmegaConf.select(cfg, key, throw_on_missing=False)
    except Exception:  # an interpolation only Hydra's runtime can resolve
        return None


def _missing_keys(node: object, prefix: str = "") -> list[str]:
    if isinstance(node, dict):
        return [k for key, v in node.items() for k in _missing_keys(v, f"{prefix}{key}.")]
    return [prefix.rstrip(".")] if node == "???" else []


def check_overrides(config_name: str, overrides: list[str]) -> DictConfig:
    """Fail fast, in one line, on an unknown group option, key, a wrongly typed value or one
    out of range.

    Model and data configs have schemas (modelyard.schema): composing them checks types and
    keys, `schema.validate` ranges. The rest (Lightning's Trainer arguments, run-level keys)
    is plain YAML: each value override must keep the kind of value it replaces (a schema
    would take 3 for a flag as True).
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf.errors import OmegaConfBaseException

    from modelyard import schema

    plain = [o for o in overrides if not o.startswith("hydra") and not o.startswith("-")]
    try:
        parsed = OverridesParser.create().parse_overrides(plain)
    except Exception as err:
        raise ConfigError(one_line(err)) from None
    groups = config_groups()

    def is_group(o) -> bool:
        key = o.key_or_group.lstrip("+~")
        return "." not in key and key.split("/")[0] in groups

    full = compose(config_name, plain)
    values = [o for o in parsed if not is_group(o) and not o.is_delete()]
    # the defaults the values replace: a second composition, only when there are values
    base = compose(config_name, [o.input_line for o in parsed if is_group(o)]) if values else full
    for o in values:
        # the value as typed: a schema converts 3 to True for a bool before we could see it
        key, new = o.key_or_group, o.value()
        old = _select(base, key)
        expected = _kind(old)
        switched_off = new is None and expected == "mapping"  # callbacks.early_stopping=null
        if expected and expected != _kind(new) and not switched_off:
            raise ConfigError(
                f"override {o.input_line!r}: {key} expects a {expected}, "
                f"got {new!r} (default {old!r})"
            )
        if isinstance(old, int) and not isinstance(old, bool) and isinstance(new, float):
            raise ConfigError(
                f"override {o.input_line!r}: {key} expects a whole number, got {new!r}"
            )
    missing = sorted(_missing_keys(OmegaConf.to_container(full, resolve=False)))
    if missing:
        raise ConfigError(f"missing mandatory value(s): {', '.join(missing)} (set key=value)")
    try:
        schema.validate(full)
    except OmegaConfBaseException as err:  # a __post_init__'s ConfigError, wrapped
        cause = err.__cause__ if isinstance(err.__cause__, ConfigError) else err
        raise ConfigError(one_line(cause)) from None
    if config_name in ("train", "sweep"):
        from modelyard import tasks

        tasks.check(full)  # registrable, servable, promotable: found now, not after training
    return full


def hydra_app(config_name: str, body: Callable[[DictConfig], None]) -> None:
    """Run `body` as the Hydra app of conf/<config_name>.yaml in the project found from the
    working directory; a user's mistake ends in one line and exit 2."""
    import hydra

    with exit_on_user_error():
        root = project.root()
        project.check_code_matches(root)
        register_resolvers()

    @hydra.main(version_base="1.3", config_path=str(root / "conf"), config_name=config_name)
    def app(cfg: DictConfig) -> None:
        silence_library_notices()  # again: DDP ranks start here, and Hydra resets logging
        try:
            with exit_on_user_error():
                body(cfg)
        except BaseException as error:  # a signal: exit as the shell reports it, never 0
            signal = interrupting_signal(error)
            if signal is None:
                raise
            print(f"modelyard: stopped by {signal}", file=sys.stderr)
            sys.exit(SIGNAL_EXITS[signal])

    app()
