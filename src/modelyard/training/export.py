"""The trained model as a file of weights and constructor arguments only.

Lightning's own checkpoints also hold the loops, optimiser, callbacks (with absolute paths)
and the MLflow run id, so the same training in two clones gives different bytes. This file
holds what defines the model, is byte-identical wherever it was trained, loads with
`torch.load(weights_only=True)` and, having Lightning's keys, with `load_from_checkpoint`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig

from modelyard.errors import DataError, one_line
from modelyard.training.checkpoint_io import atomic_save


def weights_sha256(state_dict: dict[str, torch.Tensor]) -> str:
    """A hash of the weights alone: names and bytes, in name order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(state_dict.items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


RECORD_KEY = "modelyard"  # what the file was trained on: task, data config, target, classes


def trained_on(cfg: DictConfig, datamodule: Any) -> dict[str, Any]:
    """The model file's record: its task and the data config (path project-relative), target
    and classes it was trained on, so figures and registration need not guess them."""
    from modelyard.registry.record import data_config

    return {"task": str(cfg.task), "data": data_config(cfg, Path(cfg.paths.root_dir)),
            "target": datamodule.target_name, "classes": datamodule.class_names}


def export_model(model: L.LightningModule, path: Path, record: dict[str, Any] | None = None
                 ) -> str:
    """Write the model file atomically (no partial file on a crash); return its weights hash."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {
        "state_dict": state,
        model.CHECKPOINT_HYPER_PARAMS_KEY: dict(model.hparams),
        "pytorch-lightning_version": L.__version__,
        **({RECORD_KEY: record} if record else {}),
    }
    atomic_save(payload, path)
    return weights_sha256(state)


def load_model(model_class: type[L.LightningModule], path: Path) -> L.LightningModule:
    """A model from an exported file or a Lightning checkpoint, reading no pickled code."""
    if not path.is_file():
        raise DataError(f"{path}: no such checkpoint file")
    try:
        return model_class.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many kinds for a file that is not a checkpoint
        raise DataError(f"{path}: not a readable {model_class.__name__} checkpoint "
                        f"({one_line(err, 200)})") from None


def model_record(path: Path) -> dict[str, Any]:
    """The record a model file carries (`trained_on`); empty for a plain Lightning checkpoint."""
    if not path.is_file():
        raise DataError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many kinds for a file that is not a checkpoint
        raise DataError(f"{path}: not a readable checkpoint ({one_line(err, 200)})") from None
    return dict(payload.get(RECORD_KEY) or {}) if isinstance(payload, dict) else {}
