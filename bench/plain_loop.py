"""The hand-written PyTorch loop modelyard is measured against: the same network, batches,
optimiser, seed and thread count, and nothing else (no Lightning, no metrics, no logging)."""

from __future__ import annotations

import time

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from modelyard import build
from modelyard.data.digits import random_affine


def batches(cfg: DictConfig):
    """The task's model and its train loader, built from the same config as `modelyard train`."""
    L.seed_everything(cfg.seed, workers=True)
    datamodule = build.datamodule(cfg)
    model = instantiate(cfg.model, _convert_="all")(**datamodule.fitted_inputs())
    return model, datamodule


def train_steps(cfg: DictConfig, steps: int) -> list[float]:
    """Run `steps` optimiser steps; return the wall-clock time at each step's start."""
    model, datamodule = batches(cfg)
    augment = getattr(datamodule, "augment", None)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.model.lr,
                                  weight_decay=cfg.model.weight_decay)
    model.train()
    starts: list[float] = []
    while len(starts) < steps:
        for inputs, target in datamodule.train_dataloader():
            if len(starts) == steps:
                break
            starts.append(time.time())
            if augment:  # modelyard augments on the device, per training batch
                inputs = random_affine(inputs, **augment)
            loss = model.loss(model(inputs), target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return starts


def loader_batches_per_s(cfg: DictConfig, seconds: float = 3.0) -> float:
    """How fast the train DataLoader alone delivers batches (including the device hook)."""
    _, datamodule = batches(cfg)
    augment = getattr(datamodule, "augment", None)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for inputs, _ in datamodule.train_dataloader():
            if augment:
                random_affine(inputs, **augment)
            count += 1
            if time.perf_counter() - start >= seconds:
                break
    return count / (time.perf_counter() - start)
