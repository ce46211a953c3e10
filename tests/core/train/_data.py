"""Tiny separable FER-shaped datasets for engine tests (7 classes, grey, 16 px)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from fer_core.data.dataset import ArrayDataset
from fer_core.preprocess import PreprocessSpec


def separable(n_per_class: int = 6, size: int = 16, seed: int = 0, counts: list[int] | None = None) -> ArrayDataset:
    """Class ``c`` images have mean brightness ``20 + 32 c`` plus noise (invariant to flips and shifts)."""
    rng = np.random.default_rng(seed)
    counts = counts or [n_per_class] * 7
    labels = np.repeat(np.arange(7), counts)
    noise = rng.integers(0, 16, size=(len(labels), size, size))
    px = (20 + 32 * labels[:, None, None] + noise).astype(np.uint8)
    ids = [f"s{seed}-{i:04d}" for i in range(len(labels))]
    return ArrayDataset(px, labels, ids, PreprocessSpec(size=(size, size)))


class TinyCNN(nn.Module):
    """A BatchNorm-free CNN: micro-batch splits give exactly the full-batch gradient."""

    def __init__(self, num_classes: int = 7):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x))
