"""Training-specific errors."""

from __future__ import annotations

from collections.abc import Sequence

from fer_core.errors import FerError


class TrainingDivergedError(FerError):
    """The loss or the gradients became NaN/Inf; names the global step, epoch and the batch's sample ids.

    Attributes:
        step: global optimizer step (0-based) at which the divergence was seen.
        epoch: epoch (0-based).
        sample_ids: the ids of the batch that produced it.
    """

    def __init__(self, what: str, step: int, epoch: int, sample_ids: Sequence[str]):
        self.step, self.epoch, self.sample_ids = step, epoch, list(sample_ids)
        shown = self.sample_ids[:16]
        more = f" (+{len(self.sample_ids) - 16} more)" if len(self.sample_ids) > 16 else ""
        super().__init__(
            f"training diverged: {what} at global step {step}, epoch {epoch}; batch sample_ids {shown}{more}. "
            "Lower the learning rate, enable clip_grad_norm, or inspect these samples."
        )
