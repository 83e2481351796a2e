"""What a registered version is, recorded with it: its task and serving kind, the target and
classes its outputs are named after, the data config it was trained on (path, columns,
target), its promotion policy and its baselines' test scores.

It is one of the version's files (`task.json`, an artifact of the logged model), written at
registration. Serving reads the target and classes from it, the promotion gate the data and
the policy, so nothing after training falls back on the task's defaults, which may have
changed since or never described this version's data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from modelyard.errors import ModelyardError

RECORD = "task"             # artifact name, as the pyfunc's context sees it
DATA_PACKAGE = "modelyard.data."  # the only DataModules a record may name


def data_config(cfg: DictConfig, root: Path) -> dict[str, Any]:
    """The run's data config, resolved, its path relative to the project when inside it (so
    the record holds in any clone)."""
    from modelyard.tracking.lineage import relative_to_project

    data = OmegaConf.to_container(cfg.data, resolve=True)
    data["path"] = relative_to_project(Path(data["path"]), root)
    return data


def make_record(task: str, kind: str, datamodule: Any, data: dict[str, Any],
                policy: dict[str, Any], baselines: dict[str, dict[str, float]]) -> dict:
    return {
        "task": task,
        "kind": kind,
        "target": datamodule.target_name,
        "classes": datamodule.class_names,
        "data": data,
        "policy": policy,
        "baselines": baselines,
    }


def write(record: dict[str, Any], directory: Path) -> str:
    path = directory / "task.json"
    path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    return str(path)


def read(files: dict[str, str]) -> dict[str, Any]:
    if RECORD not in files:
        raise ModelyardError("this version was registered before versions carried their task "
                             "record (task.json): register its model again")
    return json.loads(Path(files[RECORD]).read_text())


def datamodule(record: dict[str, Any], root: Path) -> Any:
    """The DataModule the version was trained on, every split read and checked; a recorded
    project-relative path is read in this checkout."""
    from hydra.utils import instantiate

    data = dict(record["data"])
    if not str(data.get("_target_", "")).startswith(DATA_PACKAGE):
        raise ModelyardError(f"the version's record names data module {data.get('_target_')!r}, "
                             f"not one of {DATA_PACKAGE}*")
    data["path"] = str(root / data["path"])  # an absolute path stays itself
    module = instantiate(data, _convert_="all")
    module.setup()
    return module


def baseline_scores(metrics: dict[str, float]) -> dict[str, dict[str, float]]:
    """`baseline_<name>_test_<metric>` run metrics as {name: {test_<metric>: value}}."""
    import re

    scores: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        match = re.fullmatch(r"baseline_(.+?)_(test_.+)", key)
        if match:
            scores.setdefault(match[1], {})[match[2]] = float(value)
    return scores
