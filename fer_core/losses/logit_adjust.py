"""Logit-adjusted loss (Menon et al., ICLR 2021): CE(z + tau * log(prior), y); the model's logits stay unadjusted.

Adding the log prior only inside the training loss makes the plain logits Bayes-consistent for the balanced error,
so inference needs no post-hoc correction.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from fer_core.config import FrozenModel
from fer_core.errors import ConfigError
from fer_core.losses._registry import LOSSES


class LogitAdjustLossConfig(FrozenModel):
    kind: Literal["logit_adjust"] = "logit_adjust"
    tau: float = Field(1.0, ge=0)


def log_prior(class_counts: np.ndarray) -> np.ndarray:
    """``log(n_c / N)`` ``[C]``.

    Raises:
        ConfigError: a class has no samples.
    """
    n = np.asarray(class_counts, dtype=np.float64)
    if np.any(n <= 0):
        raise ConfigError(f"logit adjustment needs >= 1 sample per class, got counts {n.astype(int).tolist()}")
    return np.log(n / n.sum())


def logit_adjust_loss(
    logits: torch.Tensor, targets: torch.Tensor, log_prior: torch.Tensor, tau: float = 1.0
) -> torch.Tensor:
    """Mean cross-entropy on ``logits [B, C] + tau * log_prior [C]`` against ``targets [B]``."""
    return F.cross_entropy(logits.float() + tau * log_prior.to(logits.device, torch.float32), targets)


@LOSSES.register("logit_adjust")
class LogitAdjustLoss(nn.Module):
    """Module form of :func:`logit_adjust_loss` with the prior fixed from the training counts."""

    def __init__(self, class_counts: np.ndarray, tau: float = 1.0):
        super().__init__()
        self.register_buffer("log_prior", torch.tensor(log_prior(class_counts), dtype=torch.float32))
        self.tau = tau

    @classmethod
    def from_config(cls, cfg: LogitAdjustLossConfig, class_counts: np.ndarray | None = None) -> LogitAdjustLoss:
        if class_counts is None:
            raise ConfigError("logit_adjust loss needs the training class counts")
        return cls(class_counts, cfg.tau)

    def forward(
        self, logits: torch.Tensor, targets: torch.Tensor, idx: torch.Tensor | None = None, epoch: int = 0
    ) -> dict[str, torch.Tensor]:
        """``{"loss": scalar}`` for logits ``[B, C]`` and targets ``[B]``."""
        return {"loss": logit_adjust_loss(logits, targets, self.log_prior, self.tau)}
