"""Focal loss (Lin et al., ICCV 2017): FL = -(1 - p_t)^gamma * log(p_t), averaged over the batch."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from fer_core.config import FrozenModel
from fer_core.losses._registry import LOSSES


class FocalLossConfig(FrozenModel):
    kind: Literal["focal"] = "focal"
    gamma: float = Field(2.0, ge=0)


def focal_loss(
    logits: torch.Tensor, targets: torch.Tensor, gamma: float = 2.0, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean focal loss; ``gamma = 0`` is plain cross-entropy.

    Args:
        logits: ``[B, C]``.
        targets: class indices ``[B]``.
        gamma: focusing parameter.
        weight: optional per-class weights ``[C]`` multiplying each sample's term (weighted mean over the batch).

    Returns:
        Scalar tensor.
    """
    logp_t = F.log_softmax(logits.float(), dim=1).gather(1, targets.view(-1, 1)).squeeze(1)
    per_sample = -((1.0 - logp_t.exp()).clamp(min=0.0) ** gamma) * logp_t
    if weight is None:
        return per_sample.mean()
    w = weight.to(per_sample)[targets]
    return (w * per_sample).sum() / w.sum()


@LOSSES.register("focal")
class FocalLoss(nn.Module):
    """Module form of :func:`focal_loss`; follows the engine's criterion protocol."""

    def __init__(self, gamma: float = 2.0):
        super().__init__()
        self.gamma = gamma

    @classmethod
    def from_config(cls, cfg: FocalLossConfig, class_counts: np.ndarray | None = None) -> FocalLoss:
        return cls(cfg.gamma)

    def forward(
        self, logits: torch.Tensor, targets: torch.Tensor, idx: torch.Tensor | None = None, epoch: int = 0
    ) -> dict[str, torch.Tensor]:
        """``{"loss": scalar}`` for logits ``[B, C]`` and targets ``[B]``."""
        return {"loss": focal_loss(logits, targets, self.gamma)}
