"""`modelyard stage <job> <name>`: one stage of the DVC pipeline for an entry of params.yaml's
`tasks`, and `modelyard stage deps`, which writes what each entry's stages depend on.

An entry is named after its task (conf/experiment/<name>.yaml), or names one with
`experiment:` (the user's own data through a shipped task); the rest of it is Hydra keys
(`data.path`, `model.lr`, ...), passed as overrides, so `dvc exp run -S tasks.<name>.<key>=`
turns them and the run's recorded command names them. Its outputs go to pipeline/<name>/.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from modelyard.errors import ConfigError

JOBS = ("train", "evaluate", "register")
DEPS_DIR = "pipeline/tasks"  # written by `stage deps`, one directory per entry
# Code a stage's outputs depend on: what its entry points import from these packages
# (tracking, registry and plotting code records and draws, it does not change a model).
PACKAGES = {"train": ("modelyard.models", "modelyard.data", "modelyard.training"),
            "evaluate": ("modelyard.models", "modelyard.data", "modelyard.training"),
            "register": ("modelyard.registry",)}
ENTRY = {"train": ["modelyard.training.train"], "evaluate": ["modelyard.training.evaluate"],
         # what registers, and what the logged model runs when it loads
         "register": ["modelyard.registry.register", "modelyard.registry.model_code",
                      "modelyard.registry.serving"]}
CONFIG = {"train": "train", "evaluate": "evaluate", "register": "train"}
# where a run writes and what happens after it, not what it computes
VOLATILE = ("paths", "logger", "hydra", "stage", "registry")


def entries(root: Path) -> dict[str, dict[str, Any]]:
    """params.yaml's `tasks`, checked: each names a task and gives its data path."""
    import yaml

    from modelyard import tasks

    file = root / "params.yaml"
    found = (yaml.safe_load(file.read_text()) or {}).get("tasks") if file.is_file() else None
    if not isinstance(found, dict) or not found:
        raise ConfigError(f"{file}: no `tasks:` mapping (the pipeline's tasks and their knobs)")
    known = tasks.names(root)
    for name, entry in found.items():
        experiment = (entry or {}).get("experiment", name)
        if experiment not in known:
            raise ConfigError(f"params.yaml tasks.{name}: no conf/experiment/{experiment}.yaml "
                              f"(tasks: {', '.join(known)}); name one with `experiment:`")
        if not str(((entry or {}).get("data") or {}).get("path") or ""):
            raise ConfigError(f"params.yaml tasks.{name}: data.path is missing (the stages "
                              "depend on the data directory)")
    return found


def as_override(key: str, value: Any) -> str:
    def text(v: Any) -> str:
        if isinstance(v, bool) or v is None:
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ",".join(text(x) for x in v) + "]"
        if isinstance(v, str) and not re.fullmatch(r"[\w./-]+", v):
            return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"
        return str(v)

    return f"{key}={text(value)}"


def flattened(mapping: dict[str, Any], prefix: str = "") -> list[str]:
    found = []
    for key, value in mapping.items():
        if isinstance(value, dict) and value:
            found += flattened(value, f"{prefix}{key}.")
        else:
            found.append(as_override(f"{prefix}{key}", value))
    return found


def overrides(name: str, job: str, root: Path) -> list[str]:
    """The Hydra overrides of entry `name`'s `job` stage."""
    if job not in JOBS:
        raise ConfigError(f"unknown stage job {job!r}: one of {', '.join(JOBS)} or deps")
    found = entries(root)
    if name not in found:
        raise ConfigError(f"no entry {name!r} in params.yaml's tasks: {', '.join(found)}")
    entry = dict(found[name] or {})
    experiment = entry.pop("experiment", name)
    knobs = [f"experiment={experiment}", *flattened(entry)]
    if job == "register":
        return knobs
    stage = ["pipeline=dvc_stage", f"stage={name}"]
    if job == "evaluate":
        stage += [f"ckpt_path=pipeline/{name}/train/model.ckpt",
                  f"metrics_file=metrics/{name}.json"]
    return [*knobs, *stage]


# --- what a stage depends on --------------------------------------------------------------

def module_file(module: str) -> Path | None:
    """A modelyard module's source file, found without importing it (None: not a module,
    e.g. a class named in `from x import Name`)."""
    import modelyard

    parts = module.split(".")
    if parts[0] != "modelyard":
        return None
    base = Path(modelyard.__file__).parent.joinpath(*parts[1:])
    for file in (base.with_suffix(".py"), base / "__init__.py"):
        if file.is_file():
            return file
    return None


def imported(file: Path) -> set[str]:
    """Modules a file imports anywhere (functions too), but not under `if TYPE_CHECKING:`."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)  # submodules
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(file.read_text()))
    return found


def code_closure(roots: list[str], packages: tuple[str, ...], root: Path) -> dict[str, str]:
    """sha256 of every file of `packages` that `roots` import, directly or not."""
    seen: dict[str, str] = {}
    todo = list(roots)
    while todo:
        module = todo.pop()
        file = module_file(module) if module.startswith(packages) or module in roots else None
        if file is None:
            continue
        key = str(file.resolve().relative_to(root.resolve()))
        if key in seen:
            continue
        seen[key] = hashlib.sha256(file.read_bytes()).hexdigest()
        todo += [m for m in imported(file) if m.startswith(packages)]
        if file.name == "__init__.py":
            continue
        package = module.rpartition(".")[0]  # its package's __init__ runs first
        if package.startswith(packages):
            todo.append(package)
    return dict(sorted(seen.items()))


def targets(config: Any) -> list[str]:
    """The modules of every `_target_` in a config (model, data, baselines, callbacks)."""
    if isinstance(config, dict):
        own = [str(config["_target_"]).rpartition(".")[0]] if "_target_" in config else []
        return own + [m for v in config.values() for m in targets(v)]
    if isinstance(config, list):
        return [m for v in config for m in targets(v)]
    return []


def stage_deps(name: str, job: str, root: Path) -> dict[str, Any]:
    """What entry `name`'s `job` stage computes from: its composed config (minus where it
    writes) and the code it runs."""
    from omegaconf import OmegaConf

    from modelyard.config import compose

    composed = compose(CONFIG[job], overrides(name, job, root))
    if job == "register":
        from modelyard import tasks

        tasks.check(composed)  # registrable, servable, promotable: before anything trains
    cfg = OmegaConf.to_container(composed, resolve=False)
    if job == "register":
        config = {k: cfg[k] for k in ("task", "registry", "data", "model", "baseline")
                  if k in cfg}
    else:
        config = {k: v for k, v in cfg.items() if k not in VOLATILE}
    roots = [*ENTRY[job], *targets({k: config.get(k) for k in ("model", "data", "baseline",
                                                             "callbacks")})]
    return {"config": config, "code": code_closure(roots, PACKAGES[job], root)}


def write_deps(root: Path) -> list[Path]:
    """pipeline/tasks/<name>/<job>.json for every entry: a stage re-runs when its own file
    changes, not when code or config it does not use does. Files of entries no longer in
    params.yaml are removed."""
    import shutil

    out = root / DEPS_DIR
    names = list(entries(root))
    written = []
    for name in names:
        directory = out / name
        directory.mkdir(parents=True, exist_ok=True)
        files = {f"{job}.json": stage_deps(name, job, root) for job in JOBS}
        files["predictions.json"] = chart(files["register.json"]["config"], root)
        for file, content in files.items():
            path = directory / file
            text = json.dumps(content, indent=1, sort_keys=True) + "\n"
            if not path.is_file() or path.read_text() != text:
                path.write_text(text)
            written.append(path)
    for stale in out.iterdir() if out.is_dir() else ():
        if stale.name not in names:
            shutil.rmtree(stale)
    return written


def chart(config: dict[str, Any], root: Path) -> dict[str, Any]:
    """The evaluate stage's chart (a DVC plot template): DVC's confusion matrix for classes,
    else .dvc/plots/scatter_fitted.json (predicted against actual, axes fitted to the data)."""
    from modelyard.registry.policy import METRICS

    if METRICS[config["registry"]["policy"]["metric"]][0] == "classifier":
        from dvc_render.vega_templates import ConfusionTemplate

        return ConfusionTemplate.DEFAULT_CONTENT
    return json.loads((root / ".dvc" / "plots" / "scatter_fitted.json").read_text())


# --- the command ---------------------------------------------------------------------------

def run(options: argparse.Namespace) -> None:
    from modelyard import project

    root = project.root()
    if options.job == "deps":
        for path in write_deps(root):
            print(f"wrote {path.relative_to(root)}")
        return
    if options.name is None:
        raise ConfigError(f"modelyard stage {options.job} needs an entry of params.yaml's tasks")
    args = [*overrides(options.name, options.job, root), *options.overrides]
    if options.job == "register":
        register(options.name, args, root)
        return
    from modelyard.commands.jobs import hydra_command

    hydra_command(options.job, args)


def register(name: str, args: list[str], root: Path) -> Any:
    """Entry `name`'s pipeline model as its challenger (idempotent); the version."""
    from modelyard.config import check_overrides
    from modelyard.registry.register import register as register_model
    from modelyard.training import build

    cfg = check_overrides("train", args)
    version = register_model(cfg, root / "pipeline" / name / "train" / "model.ckpt",
                             build.datamodule(cfg))
    aliases = ",".join(sorted(version.aliases)) or "no alias"
    print(f"registered: models:/{version.name}/{version.version} ({aliases})")
    return version
