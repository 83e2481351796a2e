"""Checkpoints are written whole or not at all."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import torch

from modelyard.training.checkpoint_io import AtomicCheckpointIO


def test_a_checkpoint_appears_whole_under_its_name(tmp_path: Path) -> None:
    target = tmp_path / "checkpoints" / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"w": torch.arange(3)}, target)
    assert torch.equal(torch.load(target, weights_only=True)["w"], torch.arange(3))
    assert [p.name for p in target.parent.iterdir()] == ["last.ckpt"]


def test_a_failed_write_leaves_no_partial_file_and_names_the_target(tmp_path: Path) -> None:
    target = tmp_path / "best.ckpt"
    target.mkdir()  # the final rename cannot replace a directory
    with pytest.raises(OSError) as caught:
        AtomicCheckpointIO().save_checkpoint({"w": torch.zeros(2)}, target)
    assert caught.value.filename == str(target) and caught.value.errno == errno.EISDIR
    assert [p.name for p in tmp_path.iterdir()] == ["best.ckpt"]
