"""The protocols the engine consumes: training data (ArrayDataset's) and the criterion (distillation plugs in here)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import torch


@runtime_checkable
class TrainData(Protocol):
    """What :class:`fer_core.data.dataset.ArrayDataset` offers."""

    labels: np.ndarray
    sample_ids: Sequence[str]

    def __len__(self) -> int: ...

    def get_batch(
        self, indices: np.ndarray, train: bool = False, rng: np.random.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]: ...


class Criterion(Protocol):
    """A training loss: ``criterion(logits [B, C], targets [B], idx [B] dataset row positions, epoch)``.

    ``logits`` are float32; ``targets`` and ``idx`` (int64) are on the logits' device. ``idx`` indexes the training
    dataset (and anything aligned to it, e.g. teacher logits joined by sample_id beforehand).

    Returns a dict of scalar tensors with key ``"loss"`` (what is optimised); other keys are logged as epoch means.

    A criterion with a true ``wants_inputs`` attribute is called with ``inputs=`` the (augmented, normalised)
    micro-batch ``x [B, C, H, W]`` on the device as well (online distillation scores it with its teachers).
    """

    def __call__(
        self, logits: torch.Tensor, targets: torch.Tensor, idx: torch.Tensor, epoch: int
    ) -> dict[str, torch.Tensor]: ...
