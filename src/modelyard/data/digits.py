"""MNIST-format digits: uint8 28x28 images in .npz splits; light affine augmentation."""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from modelyard.data.base import BatchedTensors, SplitDataModule
from modelyard.errors import DataError


class DigitsDataModule(SplitDataModule):
    suffix = ".npz"
    dataset_name = "digits"

    def __init__(
        self, path: str, batch_size: int, num_workers: int, augment: dict[str, float] | None,
        target: str = "digit", classes: list[Any] | None = None,
    ) -> None:
        super().__init__(path, batch_size, num_workers)
        self.augment = dict(augment) if augment else None
        self.target, self.classes = target, list(range(10) if classes is None else classes)
        self.images: dict[str, np.ndarray] = {}  # as stored: uint8, what a client sends

    def load_split(self, file: Path) -> BatchedTensors:
        try:
            with np.load(file) as archive:
                images, labels = archive["images"], archive["labels"]
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as err:
            raise DataError(f"{file}: unreadable digits archive ({err})") from None
        if images.ndim != 3 or images.shape[1:] != (28, 28) or len(images) != len(labels):
            raise DataError(
                f"{file}: expected images of shape (N, 28, 28) and N labels, "
                f"got {images.shape} and {labels.shape}"
            )
        if len(images) == 0:  # nothing to learn or score; min()/max() below would raise
            raise DataError(f"{file}: no images (0 of shape 28x28)")
        top = len(self.classes) - 1
        if images.dtype != np.uint8 or labels.min() < 0 or labels.max() > top:
            raise DataError(f"{file}: expected uint8 pixels and labels 0-{top}")
        self.images[file.stem] = images
        x = torch.from_numpy(images).unsqueeze(1).float().div_(255.0)
        return BatchedTensors(x, torch.from_numpy(labels.astype(np.int64)))

    def fitted_inputs(self) -> dict[str, Any]:
        x = self.datasets["train"].tensors[0]
        return {"pixel_mean": float(x.mean()), "pixel_std": float(x.std())}

    def raw_split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        return self.images[split], self.datasets[split].tensors[1].numpy()

    @property
    def target_name(self) -> str:
        return self.target

    @property
    def class_names(self) -> list[Any]:
        return self.classes

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        # Augment on the device, training batches only.
        if self.augment and self.trainer is not None and self.trainer.training:
            images, labels = batch
            return random_affine(images, **self.augment), labels
        return batch


def random_affine(
    images: torch.Tensor, max_rotation_deg: float, max_shift_px: float, max_scale: float
) -> torch.Tensor:
    """Rotate, scale and shift each image of a (B, 1, H, W) batch by a random small amount."""
    n, _, height, _ = images.shape
    uniform = lambda: torch.rand(n, device=images.device) * 2 - 1  # noqa: E731
    angle = uniform() * math.radians(max_rotation_deg)
    scale = 1 + uniform() * max_scale
    shift = torch.stack([uniform(), uniform()], dim=1) * (2 * max_shift_px / height)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, align_corners=False, padding_mode="zeros")
