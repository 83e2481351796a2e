"""Checkpoint files written whole or not at all.

`torch.save` straight to the final name leaves a truncated file when the disk fills or the
job dies mid-write, and a later `resume=true` or `dvc` would take it for a checkpoint. Here
the bytes go to a hidden partial file beside the target, which replaces the target only once
complete; a failed write removes it and names the target, not the partial file.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO


def atomic_save(payload: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    buffer = io.BytesIO()  # torch.save to a full disk fails inside its zip writer, vaguely
    torch.save(payload, buffer)
    try:
        partial.write_bytes(buffer.getbuffer())
        os.replace(partial, path)
    except BaseException as err:
        partial.unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise OSError(err.errno, err.strerror, str(path)) from None
        raise


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO with atomic writes (conf/trainer/default.yaml, `plugins`)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path,
                        storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        atomic_save(checkpoint, Path(path))
