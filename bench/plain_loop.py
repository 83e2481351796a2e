"""The hand-written PyTorch loop modelyard is measured against: the same network, batches,
optimiser, seed and thread count, and nothing else (no Lightning, no metrics, no logging).
Also the same step through Lightning's loop alone, to tell Lightning's cost from modelyard's."""

from __future__ import annotations

import tempfile
import time
from types import MethodType

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from step_timer import StepTimer

from modelyard.data.digits import random_affine
from modelyard.training import build


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


def bare_lightning_steps(cfg: DictConfig, steps: int) -> list[float]:
    """The hand-written loop's step inside a bare Lightning Trainer (no metrics, logging,
    validation, checkpoints, progress bar): what Lightning's loop alone adds per step."""
    model, datamodule = batches(cfg)

    def training_step(self, batch, batch_idx):
        inputs, target = batch
        return self.loss(self(inputs), target)

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=cfg.model.lr,
                                 weight_decay=cfg.model.weight_decay)

    model.training_step = MethodType(training_step, model)
    model.configure_optimizers = MethodType(configure_optimizers, model)
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        timer = StepTimer(out.name)
        trainer = L.Trainer(accelerator="cpu", devices=1, max_steps=steps, limit_val_batches=0,
                            logger=False, enable_checkpointing=False, enable_progress_bar=False,
                            enable_model_summary=False, callbacks=[timer])
        trainer.fit(model, datamodule=datamodule)
    return timer.step_starts


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
