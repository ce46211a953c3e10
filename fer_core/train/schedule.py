"""Learning-rate schedule: linear warm-up then cosine decay to zero, stepped once per optimizer step."""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR


class WarmupCosine:
    """Multiplier of the base lr at optimizer step ``s`` (picklable, so LambdaLR's state holds plain numbers).

    Args:
        warmup_steps: steps of linear warm-up from ``1/warmup_steps`` to 1.
        total_steps: total optimizer steps; the multiplier reaches 0 at the end.
    """

    def __init__(self, warmup_steps: int, total_steps: int):
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)

    def __call__(self, s: int) -> float:
        if s < self.warmup_steps:
            return (s + 1) / self.warmup_steps
        span = max(1, self.total_steps - self.warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (s - self.warmup_steps) / span)))


def warmup_cosine(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int) -> LambdaLR:
    """A per-step LambdaLR with :class:`WarmupCosine`."""
    return LambdaLR(optimizer, WarmupCosine(warmup_steps, total_steps))
