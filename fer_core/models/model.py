"""FERModel: a timm backbone producing pooled features, followed by a linear or ArcFace head."""

from __future__ import annotations

import torch
from torch import nn

from fer_core.models.arcface import ArcFaceHead
from fer_core.models.config import ModelConfig


class FERModel(nn.Module):
    """Backbone (timm, ``num_classes=0``) + head.

    Args:
        backbone: module mapping ``[B, C_in, H, W]`` to pooled features ``[B, D]`` (``D`` = ``head_hidden_size``
            if the backbone has one, else ``num_features``).
        cfg: the model config (head type, classes, ArcFace schedule).
    """

    def __init__(self, backbone: nn.Module, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.backbone = backbone
        # MobileNetV3 pools then projects (conv_head): its output width is head_hidden_size, not num_features.
        dim = int(getattr(backbone, "head_hidden_size", None) or backbone.num_features)
        self.dropout = nn.Dropout(cfg.drop_rate) if cfg.drop_rate > 0 else nn.Identity()
        if cfg.head == "arcface":
            self.head: nn.Module = ArcFaceHead(dim, cfg.num_classes, s=cfg.arcface.s, m=cfg.arcface.m)
        else:
            self.head = nn.Linear(dim, cfg.num_classes)
        self.set_epoch(0)

    @property
    def uses_labels(self) -> bool:
        """True when the head needs the targets in training (ArcFace)."""
        return self.cfg.head == "arcface"

    def set_epoch(self, epoch: int) -> None:
        """Drive the ArcFace schedule: margin 0 during warm-up, then a linear ramp to ``m`` over ``margin_epochs``."""
        if not isinstance(self.head, ArcFaceHead):
            return
        a = self.cfg.arcface
        past = epoch - a.warmup_epochs
        if past < 0:
            margin = 0.0
        elif a.margin_epochs == 0:
            margin = a.m
        else:
            margin = a.m * min(1.0, (past + 1) / a.margin_epochs)
        self.head.set_margin(margin)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features ``[B, D]`` for input ``[B, C_in, H, W]``."""
        return self.backbone(x)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``[B, num_classes]``; ``labels`` ``[B]`` only matter for the ArcFace head in training."""
        feats = self.dropout(self.backbone(x))
        if isinstance(self.head, ArcFaceHead):
            return self.head(feats, labels)
        return self.head(feats)
