"""Class-balanced loss (Cui et al., CVPR 2019): w_c ∝ (1 - beta) / (1 - beta^n_c), normalised to sum to C.

The weighted loss is cross-entropy (``gamma = 0``) or focal loss (``gamma > 0``), averaged with the weights.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from fer_core.config import FrozenModel
from fer_core.errors import ConfigError
from fer_core.losses._registry import LOSSES
from fer_core.losses.focal import focal_loss


class ClassBalancedLossConfig(FrozenModel):
    kind: Literal["class_balanced"] = "class_balanced"
    beta: float = Field(0.9999, ge=0, lt=1)
    gamma: float = Field(0.0, ge=0)


def class_balanced_weights(class_counts: np.ndarray, beta: float = 0.9999) -> np.ndarray:
    """Per-class weights ``[C]`` from the effective number of samples ``(1 - beta^n) / (1 - beta)``.

    Raises:
        ConfigError: a class has no samples (its weight would be infinite).
    """
    n = np.asarray(class_counts, dtype=np.float64)
    if np.any(n <= 0):
        raise ConfigError(
            f"class-balanced weights need >= 1 sample per class, got counts {n.astype(int).tolist()}; "
            "fix the split or use another loss"
        )
    w = (1.0 - beta) / (1.0 - np.power(beta, n))
    return w * (len(n) / w.sum())


def class_balanced_loss(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor, gamma: float = 0.0
) -> torch.Tensor:
    """Weighted mean cross-entropy / focal loss.

    Args:
        logits: ``[B, C]``.
        targets: class indices ``[B]``.
        weights: per-class weights ``[C]`` (see :func:`class_balanced_weights`).
        gamma: focal exponent (0: cross-entropy).

    Returns:
        Scalar tensor.
    """
    return focal_loss(logits, targets, gamma, weight=weights)


@LOSSES.register("class_balanced")
class ClassBalancedLoss(nn.Module):
    """Module form of :func:`class_balanced_loss` with weights fixed from the training counts."""

    def __init__(self, class_counts: np.ndarray, beta: float = 0.9999, gamma: float = 0.0):
        super().__init__()
        w = class_balanced_weights(class_counts, beta)
        self.register_buffer("weights", torch.tensor(w, dtype=torch.float32))
        self.gamma = gamma

    @classmethod
    def from_config(cls, cfg: ClassBalancedLossConfig, class_counts: np.ndarray | None = None) -> ClassBalancedLoss:
        if class_counts is None:
            raise ConfigError("class_balanced loss needs the training class counts")
        return cls(class_counts, cfg.beta, cfg.gamma)

    def forward(
        self, logits: torch.Tensor, targets: torch.Tensor, idx: torch.Tensor | None = None, epoch: int = 0
    ) -> dict[str, torch.Tensor]:
        """``{"loss": scalar}`` for logits ``[B, C]`` and targets ``[B]``."""
        return {"loss": class_balanced_loss(logits, targets, self.weights, self.gamma)}
