"""ArcFace head: cosine logits with an additive angular margin on the target class (Deng et al., CVPR 2019).

logit_j = s * cos(theta_j) for j != y, and s * cos(theta_y + m) for the target during training.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class ArcFaceHead(nn.Module):
    """Normalised-weight cosine classifier with a schedulable margin.

    Args:
        in_features: feature dimension ``D``.
        num_classes: classes ``C``.
        s: logit scale.
        m: full angular margin (radians); the active margin is set by :meth:`set_margin`.
    """

    def __init__(self, in_features: int, num_classes: int, s: float = 30.0, m: float = 0.35):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, in_features))
        nn.init.xavier_uniform_(self.weight)
        self.s = float(s)
        self.m = float(m)
        self.margin = float(m)

    def set_margin(self, margin: float) -> None:
        """Set the active margin (0 gives plain scaled cosines)."""
        self.margin = float(margin)

    def cosine(self, features: torch.Tensor) -> torch.Tensor:
        """Cosines ``[B, C]`` between features ``[B, D]`` and the class weights."""
        return F.linear(F.normalize(features, dim=1), F.normalize(self.weight, dim=1))

    def forward(self, features: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``[B, C]``; the margin applies only in training mode, with labels and a positive margin.

        Args:
            features: ``[B, D]``.
            labels: target indices ``[B]`` or None.
        """
        cos = self.cosine(features.float())
        if not self.training or labels is None or self.margin <= 0:
            return cos * self.s
        m = self.margin
        sin = torch.sqrt((1.0 - cos * cos).clamp(min=0.0))
        phi = cos * math.cos(m) - sin * math.sin(m)
        # Past theta = pi - m, cos(theta + m) stops decreasing in theta; keep the target logit monotone (insightface's
        # fallback) so the margin never rewards a worse angle.
        phi = torch.where(cos > math.cos(math.pi - m), phi, cos - math.sin(math.pi - m) * m)
        onehot = F.one_hot(labels.long(), cos.shape[1]).to(torch.bool)
        return torch.where(onehot, phi, cos) * self.s
