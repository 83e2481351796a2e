"""What a run records as its source: the code and config at a commit, the command line, and
the data by hash. Pipeline outputs (DVC outs, dvc.lock) are not sources: DVC rewrites them
while a pipeline runs, so they never make a run "dirty"."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import yaml

from modelyard.tracking.store import without_credentials

# What determines a model besides the command-line overrides and the data.
SOURCES = ("src", "conf", "dvc.yaml", "pyproject.toml")
DVC_ENV_TAGS = {  # set by DVC for stage commands and experiments
    "DVC_EXP_NAME": "dvc.exp_name",
    "DVC_EXP_BASELINE_REV": "dvc.exp_baseline",
    "DVC_STAGE": "dvc.stage",
}


def git(root: Path, *args: str) -> str | None:
    """`git <args>` in `root`; None when git fails (no repository, no commit)."""
    result = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else None


def git_state(root: Path) -> dict[str, str]:
    """The commit, and whether code or config differ from it (tracked or untracked files)."""
    sha = git(root, "rev-parse", "HEAD")
    if not sha:
        return {"git.sha": "unknown", "git.dirty": "unknown"}
    changed = git(root, "status", "--porcelain", "--untracked-files=all", "--", *SOURCES)
    return {"git.sha": sha, "git.dirty": str(bool(changed)).lower()}


def relative_to_project(path: Path, root: Path) -> str:
    """A repo-relative path for data inside the project (valid in any clone), else absolute."""
    absolute = (root / path).resolve()
    return str(absolute.relative_to(root)) if absolute.is_relative_to(root) else str(absolute)


def dvc_data_version(data_path: Path, root: Path) -> str | None:
    """The DVC md5 of a data directory: its out in dvc.lock, else its `<dir>.dvc` file."""
    data_path = (root / data_path).resolve()
    lock = root / "dvc.lock"
    if lock.exists():
        for stage in (yaml.safe_load(lock.read_text()) or {}).get("stages", {}).values():
            for out in stage.get("outs", []):
                if (root / out["path"]).resolve() == data_path:
                    return out.get("md5")
    dvc_file = data_path.with_name(f"{data_path.name}.dvc")
    if dvc_file.exists():
        outs = (yaml.safe_load(dvc_file.read_text()) or {}).get("outs", [])
        return outs[0].get("md5") if outs else None
    return None


def command_line() -> str:
    return without_credentials(shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]))


def lineage_tags(root: Path, task: str, data_path: str, seed: int,
                 data_manifest_sha256: str | None) -> dict[str, str]:
    tags = {
        **git_state(root),
        "data.path": relative_to_project(Path(data_path), root),
        "data.manifest_sha256": data_manifest_sha256 or "none (user data without manifest)",
        "seed": str(seed),
        "torch.version": metadata.version("torch"),
        "lightning.version": metadata.version("lightning"),
        "modelyard.task": task,
        "command": command_line(),
    }
    md5 = dvc_data_version(Path(data_path), root)
    if md5:
        tags["dvc.data_md5"] = md5
    tags.update({tag: os.environ[var] for var, tag in DVC_ENV_TAGS.items() if os.environ.get(var)})
    return tags
