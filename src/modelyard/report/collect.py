"""What differs between a base revision and the workspace, asked of git and DVC's own
commands (`dvc metrics diff`, `dvc params diff`, `dvc plots diff`), which read each revision's
files from git or from the DVC cache as the pipeline declares them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from modelyard.errors import ConfigError, one_line


@dataclass(frozen=True)
class Revision:
    name: str    # as the user gave it
    commit: str  # full sha


@dataclass(frozen=True)
class Change:
    """One metric or param: its value at the base and in the workspace (None: absent)."""
    name: str
    base: object
    this: object


@dataclass(frozen=True)
class Figure:
    name: str
    base: Path | None
    this: Path | None

    @property
    def changed(self) -> bool:
        if self.base is None or self.this is None:
            return self.base != self.this
        return self.base.read_bytes() != self.this.read_bytes()


def _run(command: list[str], root: Path) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(command, cwd=root, capture_output=True, text=True,
                              env={**os.environ, "DVC_NO_ANALYTICS": "1"})
    except FileNotFoundError:
        raise ConfigError(f"`{command[0]}` is not installed (needed by modelyard report)") from None


def git(root: Path, *args: str) -> str:
    done = _run(["git", *args], root)
    if done.returncode != 0:
        raise ConfigError(f"git {' '.join(args)}: {one_line(done.stderr)}")
    return done.stdout.strip()


def dvc_executable() -> str:
    """The `dvc` beside this Python (the venv's), else the one on PATH."""
    beside = Path(sys.executable).parent / "dvc"
    return str(beside) if beside.is_file() else (shutil.which("dvc") or "dvc")


def dvc_json(root: Path, *args: str) -> dict:
    done = _run([dvc_executable(), *args, "--json"], root)
    errors = [line for line in done.stderr.splitlines() if "ERROR" in line]
    if done.returncode != 0:
        raise ConfigError(f"dvc {' '.join(args)}: {one_line(errors[0] if errors else done.stderr)}")
    try:
        return json.loads(done.stdout or "{}")
    except json.JSONDecodeError:
        raise ConfigError(f"dvc {' '.join(args)} printed no JSON: "
                          f"{one_line(done.stdout or done.stderr)}") from None


def check_repository(root: Path) -> None:
    if not (root / ".dvc").is_dir():
        raise ConfigError(f"{root} is not a DVC repository (no .dvc/): run `dvc init` there, "
                          "or run modelyard report inside the checkout")
    if _run(["git", "rev-parse", "--git-dir"], root).returncode != 0:
        raise ConfigError(f"{root} is not a git repository: the base revision is read from git")


def revision(root: Path, name: str) -> Revision:
    """A commit-ish as git knows it; in a shallow CI checkout the base may not be fetched."""
    done = _run(["git", "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}"], root)
    if done.returncode != 0 or not done.stdout.strip():
        hint = (" (this clone is shallow: fetch the base first, e.g. `git fetch --unshallow`)"
                if git(root, "rev-parse", "--is-shallow-repository") == "true" else "")
        raise ConfigError(f"--base {name!r} is not a commit in {root}{hint}")
    return Revision(name, done.stdout.strip())


def metrics(root: Path, base: Revision) -> dict[str, list[Change]]:
    """Per metrics file (`metrics/<task>.json` -> its stem), every metric of either side."""
    diff = dvc_json(root, "metrics", "diff", "--all", base.commit)
    return {Path(path).stem: [Change(name, v.get("old"), v.get("new"))
                              for name, v in values.items()]
            for path, values in diff.items()}


def params(root: Path, base: Revision) -> dict[str, list[Change]]:
    """Per task of the params file (`tasks.mnist_cnn.model.lr` -> mnist_cnn; another top-level
    key is its own group), those that differ."""
    diff = dvc_json(root, "params", "diff", base.commit)
    grouped: dict[str, list[Change]] = {}
    for values in diff.values():
        for name, v in values.items():
            parts = name.split(".")
            group = parts[1] if parts[0] == "tasks" and len(parts) > 2 else parts[0]
            grouped.setdefault(group, []).append(Change(name, v.get("old"), v.get("new")))
    return grouped


def figures(root: Path, base: Revision, targets: list[str], out: Path) -> dict[str, Figure]:
    """The image plots under `targets` at the base and in the workspace, written into `out` by
    `dvc plots diff` (it fetches a revision's images from git or the DVC cache), by path."""
    existing = [t for t in targets if (root / t).exists()
                or _run(["git", "cat-file", "-e", f"{base.commit}:{t}"], root).returncode == 0]
    if not existing:
        return {}
    # DVC reports a target missing at one revision as an error entry, not a failure
    data = dvc_json(root, "plots", "diff", base.commit, "--targets", *existing,
                    "-o", str(out)).get("data", {})
    found: dict[str, Figure] = {}
    for path, entries in data.items():
        sides = {rev: Path(e["url"]) for e in entries if e.get("type") == "image"
                 for rev in e.get("revisions", ())}
        if sides:
            found[path] = Figure(path, sides.get(base.commit), sides.get("workspace"))
    return found
