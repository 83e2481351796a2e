"""Run names a person can read in the MLflow UI: the task, what the job changed from the
task's defaults, and a short id (the job directory's suffix, so the run is findable on disk).

MLflow's own random names come from Python's `random`, which `seed_everything` has just
seeded: every run would be called the same.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

# overrides that say where or how a job runs, not what it trains
PLUMBING = ("experiment", "pipeline", "paths.", "logger.", "hydra.", "registry.", "ckpt_path",
            "resume", "metrics_file", "hydra/")
MAX_CHANGES = 60  # characters of the changes part; the run's params hold every value


def short_id(output_dir: str | Path) -> str:
    """The job directory's `_<6 hex>` suffix, else a fresh one (a pipeline stage's fixed
    directory has none)."""
    match = re.search(r"_([0-9a-f]{6})$", str(output_dir))
    return match.group(1) if match else secrets.token_hex(3)


def _value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple) or OmegaConf.is_list(value):
        return "[" + ",".join(_value(v) for v in value) + "]"
    return str(value)


def changes(overrides: list[str], cfg: DictConfig, defaults: DictConfig | None) -> list[str]:
    """`key=value` for each override that changes what is trained: config-group choices
    (`debug=fast`) as typed, values only when they differ from `defaults` (the task's config
    with the same group choices), keys shortened to their last part."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    found: list[tuple[str, str]] = []
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.key_or_group.lstrip("+~")
        if override.is_delete() or key.startswith(PLUMBING):
            continue
        new = OmegaConf.select(cfg, key, default=None)
        if key == "data.path":
            found.append(("data", Path(str(new)).name))
        elif new is None or OmegaConf.is_dict(new):  # a group choice (debug=fast, trainer=gpu)
            found.append((key, str(override.value())))
        elif defaults is None or OmegaConf.select(defaults, key, default=None) != new:
            found.append((key, _value(new)))
    last = [key.rsplit(".", 1)[-1] for key, _ in found]
    return [f"{short if last.count(short) == 1 else key}={value}"
            for (key, value), short in zip(found, last, strict=True)]


def run_name(task: str, changed: list[str], job_id: str, job: str = "") -> str:
    """`market_regressor lr=0.01 batch_size=64 · 3fa2c1` (`job`: e.g. "evaluate")."""
    text = " ".join(changed)
    if len(text) > MAX_CHANGES:
        text = text[:MAX_CHANGES - 1].rsplit(" ", 1)[0] + " …"
    return " ".join(part for part in (task, job, text, "·", job_id) if part)


def name_for(cfg: DictConfig, job: str = "") -> str:
    """The run name for a job composed by Hydra: its overrides against the task's defaults
    (composed again with only the group choices). Outside a Hydra app (a test's compose),
    there are no command-line overrides to show."""
    from hydra.core.hydra_config import HydraConfig

    overrides: list[str] = []
    defaults = None
    if HydraConfig.initialized():
        import hydra

        from modelyard.config import config_groups

        overrides = list(HydraConfig.get().overrides.task)
        groups = [o for o in overrides if o.split("=", 1)[0].split("/")[0] in config_groups()]
        try:
            defaults = hydra.compose(HydraConfig.get().job.config_name, groups)
        except Exception:  # noqa: BLE001 - a name is not worth failing a job for
            defaults = None
    return run_name(str(cfg.task), changes(overrides, cfg, defaults),
                    short_id(cfg.paths.output_dir), job)
