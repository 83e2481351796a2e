"""Where the project is: found from the working directory, never from where the package is
installed, so a queued DVC experiment (a temporary copy of the repository) runs its own code
and config, and a non-editable install works wherever the user stands in a checkout.

Light on imports: the CLI asks before torch loads.
"""

from __future__ import annotations

import os
from pathlib import Path

import modelyard
from modelyard.errors import ConfigError

MARKER = Path("conf") / "train.yaml"  # what makes a directory a modelyard project
ROOT_ENV = "MODELYARD_ROOT"           # explicit root, for jobs started outside the checkout
DVC_ROOT_ENV = "DVC_ROOT"             # set by DVC for stage commands: the *parent* repo's root
TEMP_WORKSPACES = Path(".dvc") / "tmp" / "exps"


def root(start: Path | None = None) -> Path:
    """The nearest directory at or above `start` (default: the working directory) holding
    conf/train.yaml; $MODELYARD_ROOT when it is set."""
    if os.environ.get(ROOT_ENV):
        found = Path(os.environ[ROOT_ENV]).resolve()
        if not (found / MARKER).is_file():
            raise ConfigError(f"{ROOT_ENV}={found} is not a modelyard project (no {MARKER})")
        return found
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / MARKER).is_file():
            return candidate
    raise ConfigError(
        f"no modelyard project at or above {here} (no {MARKER}): run modelyard inside a "
        f"checkout, or set {ROOT_ENV}"
    )


def conf_dir(start: Path | None = None) -> Path:
    return root(start) / "conf"


def home(project: Path) -> Path:
    """Where the project's shared state (the default MLflow store, the Optuna study) lives:
    the project itself, or for a job DVC runs in a temporary workspace under
    `<repo>/.dvc/tmp/exps/`, the repository that queued it, which outlives the workspace."""
    dvc_root = os.environ.get(DVC_ROOT_ENV)
    if dvc_root and project.is_relative_to(Path(dvc_root).resolve() / TEMP_WORKSPACES):
        return Path(dvc_root).resolve()
    return project


def check_code_matches(project: Path) -> None:
    """Refuse to run another tree's code: a project that carries `src/modelyard` must be the
    one this process imported (an editable install of another clone would otherwise train
    that clone's models and record this one's lineage)."""
    own = project / "src" / "modelyard"
    imported = Path(modelyard.__file__).resolve().parent
    if own.is_dir() and own.resolve() != imported:
        raise ConfigError(
            f"this project's code is {own}, but modelyard was imported from {imported}: "
            f"run with PYTHONPATH={project / 'src'} (as dvc.yaml does) or install this checkout"
        )
