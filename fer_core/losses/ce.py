"""Cross-entropy with label smoothing (Szegedy et al., CVPR 2016): CE(y_smooth, softmax(z)), y_smooth = (1-e)y + e/C."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from fer_core.config import FrozenModel
from fer_core.losses._registry import LOSSES


class CELossConfig(FrozenModel):
    kind: Literal["ce"] = "ce"
    label_smoothing: float = Field(0.0, ge=0, lt=1)


def ce_loss(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean smoothed cross-entropy.

    Args:
        logits: ``[B, C]``.
        targets: class indices ``[B]``.
        label_smoothing: mass ``e`` spread uniformly over the ``C`` classes.

    Returns:
        Scalar tensor.
    """
    return F.cross_entropy(logits.float(), targets, label_smoothing=label_smoothing)


@LOSSES.register("ce")
class CELoss(nn.Module):
    """Module form of :func:`ce_loss`; follows the engine's criterion protocol."""

    def __init__(self, label_smoothing: float = 0.0):
        super().__init__()
        self.label_smoothing = label_smoothing

    @classmethod
    def from_config(cls, cfg: CELossConfig, class_counts: np.ndarray | None = None) -> CELoss:
        return cls(cfg.label_smoothing)

    def forward(
        self, logits: torch.Tensor, targets: torch.Tensor, idx: torch.Tensor | None = None, epoch: int = 0
    ) -> dict[str, torch.Tensor]:
        """``{"loss": scalar}`` for logits ``[B, C]`` and targets ``[B]``."""
        return {"loss": ce_loss(logits, targets, self.label_smoothing)}
