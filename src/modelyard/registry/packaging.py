"""A registered model's files: the weights as a plain state dict, the constructor arguments as
JSON (hyperparameters from the config; preprocessing fitted on the train split: standardiser,
pixel statistics, vocabulary), and the rebuild that reads them without unpickling code.

Reading checks the weights against the hash recorded when the version was registered, so a
replaced weights file is refused rather than served.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from modelyard.training.export import weights_sha256

WEIGHTS = "weights"                  # artifact names, as the pyfunc's context sees them
HYPERPARAMETERS = "hyperparameters"
PREPROCESSING = "preprocessing"
MODEL_PACKAGE = "modelyard.models."  # the only classes a registered version may name
CONTRACT = "input_contract"  # preprocessing.json's entry for the serving checks, not the model


class TamperedModel(ValueError):
    """Weights that are not the ones registered."""


def write_model_files(model: Any, directory: Path, configured: set[str],
                      contract: dict[str, Any] | None = None) -> dict[str, str]:
    """The model's files in `directory`; `configured`: the hyperparameter names that come from
    the model config (the rest were fitted on data); `contract`: what the train split says a
    plausible input is (registry/contract.py), kept beside the fitted preprocessing.
    Returns artifact name -> path."""
    hparams = dict(model.hparams)
    files = {
        WEIGHTS: directory / "weights.pt",
        HYPERPARAMETERS: directory / "hyperparameters.json",
        PREPROCESSING: directory / "preprocessing.json",
    }
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    torch.save(state, files[WEIGHTS])
    for name, keep in ((HYPERPARAMETERS, True), (PREPROCESSING, False)):
        chosen = {k: v for k, v in hparams.items() if (k in configured) == keep}
        if not keep and contract:
            chosen[CONTRACT] = contract
        files[name].write_text(json.dumps(chosen, indent=1, sort_keys=True) + "\n")
    return {name: str(path) for name, path in files.items()}


def _model_class(class_path: str) -> type:
    from hydra.utils import get_class

    if not class_path.startswith(MODEL_PACKAGE):
        raise TamperedModel(f"model class {class_path!r} is not one of {MODEL_PACKAGE}*")
    return get_class(class_path)


def read_model(class_path: str, files: dict[str, str], expected_sha256: str) -> Any:
    """The network rebuilt from its files, in eval mode; TamperedModel when the weights' hash
    is not `expected_sha256`."""
    from modelyard.errors import one_line

    weights = Path(files[WEIGHTS])
    try:  # weights_only: tensors and plain containers, never pickled objects
        state = torch.load(weights, map_location="cpu", weights_only=True)
        actual = weights_sha256(state)
    except Exception as err:  # torch raises many kinds for a file that is not a state dict
        raise TamperedModel(f"{weights.name}: not a plain state dict of tensors "
                            f"({one_line(err, 200)}); refusing to load it") from None
    if actual != expected_sha256:
        raise TamperedModel(
            f"{weights.name}: weights sha256 {actual[:12]}… differ from {expected_sha256[:12]}… "
            f"recorded when the version was registered; refusing to load a tampered model"
        )
    arguments = {}
    for name in (HYPERPARAMETERS, PREPROCESSING):
        arguments.update(json.loads(Path(files[name]).read_text()))
    arguments.pop(CONTRACT, None)
    model = _model_class(class_path)(**arguments)
    model.load_state_dict(state)
    return model.eval()


def read_contract(files: dict[str, str]) -> dict[str, Any]:
    """The input contract stored with the preprocessing ({} for versions without one)."""
    return json.loads(Path(files[PREPROCESSING]).read_text()).get(CONTRACT, {})
