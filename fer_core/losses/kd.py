"""Knowledge distillation loss (Hinton et al., 2015) with one or several weighted teachers."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from fer_core.config import FrozenModel, validate_config
from fer_core.errors import ConfigError
from fer_core.losses._registry import DISTILL_LOSSES, LOSSES, DistillLoss


class KDConfig(FrozenModel):
    """Hinton KD: ``loss = (1 − alpha)·CE + alpha·T²·KL(p_t^T ‖ p_s^T)``."""

    kind: Literal["kd"] = "kd"
    alpha: float = Field(0.5, ge=0.0, le=1.0)
    T: float = Field(4.0, gt=0.0)


def kd_divergence(student_logits: Tensor, teacher_logits: Tensor, T: float) -> Tensor:
    """Per-sample ``KL(softmax(z_t/T) ‖ softmax(z_s/T))``, unscaled (no T²).

    Args:
        student_logits: ``[..., C]``.
        teacher_logits: ``[..., C]`` (same shape).
        T: softening temperature, > 0.

    Returns:
        ``[...]`` non-negative KL per row, computed in log space (finite for any finite logits).
    """
    log_ps = F.log_softmax(student_logits / T, dim=-1)
    log_pt = F.log_softmax(teacher_logits / T, dim=-1)
    return (log_pt.exp() * (log_pt - log_ps)).sum(-1)


def expand_teachers(student_logits: Tensor, teacher_logits: Tensor, teacher_weights: Tensor | None) -> tuple:
    """Bring one or several teachers to ``[B, M, C]`` with per-sample weights ``[B, M]`` (uniform by default).

    Args:
        student_logits: ``[B, C]``.
        teacher_logits: ``[B, C]`` (one teacher) or ``[B, M, C]`` (M teachers).
        teacher_weights: ``[B, M]`` or None (uniform ``1/M``).

    Returns:
        ``(student [B, M, C], teachers [B, M, C], weights [B, M])``.

    Raises:
        ConfigError: shapes disagree.
    """
    t = teacher_logits if teacher_logits.dim() == 3 else teacher_logits.unsqueeze(1)
    b, c = student_logits.shape
    if t.shape[0] != b or t.shape[2] != c:
        raise ConfigError(
            f"teacher logits {tuple(teacher_logits.shape)} do not match student logits {tuple(student_logits.shape)}; "
            "pass [B, C] or [B, M, C] with the student's batch size and class count"
        )
    m = t.shape[1]
    if teacher_weights is None:
        w = torch.full((b, m), 1.0 / m, dtype=student_logits.dtype, device=student_logits.device)
    elif tuple(teacher_weights.shape) != (b, m):
        raise ConfigError(f"teacher_weights must be [B, M] = {(b, m)}, got {tuple(teacher_weights.shape)}")
    else:
        w = teacher_weights.to(student_logits.dtype)
    return student_logits.unsqueeze(1).expand(b, m, c), t.to(student_logits.dtype), w


def kd_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    targets: Tensor,
    alpha: float = 0.5,
    T: float = 4.0,
    teacher_weights: Tensor | None = None,
) -> dict[str, Tensor]:
    """Hinton et al. 2015, "Distilling the Knowledge in a Neural Network": (1−α)·CE + α·T²·KL(p_t^T ‖ p_s^T).

    The KL uses batchmean reduction (sum over classes, mean over the batch). With several teachers the KD term is
    ``Σ_m w_bm · KL_bm`` averaged over the batch.

    Args:
        student_logits: ``[B, C]``.
        teacher_logits: ``[B, C]`` or ``[B, M, C]``.
        targets: hard labels ``[B]`` (int64).
        alpha: weight of the KD term in ``[0, 1]``.
        T: temperature, > 0.
        teacher_weights: ``[B, M]`` per-sample teacher weights, or None for uniform.

    Returns:
        ``{"loss", "ce", "kd"}`` scalars; ``kd`` already includes the ``T²`` factor.
    """
    s, t, w = expand_teachers(student_logits, teacher_logits, teacher_weights)
    kd = T * T * (w * kd_divergence(s, t, T)).sum(1).mean()
    ce = F.cross_entropy(student_logits, targets)
    return {"loss": (1.0 - alpha) * ce + alpha * kd, "ce": ce, "kd": kd}


@LOSSES.register("kd")
class KDLoss(nn.Module):
    """Module form of :func:`kd_loss`.

    Args:
        alpha: weight of the KD term in ``[0, 1]``.
        T: temperature, > 0.
    """

    def __init__(self, alpha: float = 0.5, T: float = 4.0):
        super().__init__()
        cfg = validate_config({"alpha": alpha, "T": T}, KDConfig, where="KDLoss")
        self.alpha, self.T = cfg.alpha, cfg.T

    @classmethod
    def from_config(cls, cfg: KDConfig) -> KDLoss:
        return cls(alpha=cfg.alpha, T=cfg.T)

    def forward(
        self, student_logits: Tensor, teacher_logits: Tensor, targets: Tensor, teacher_weights: Tensor | None = None
    ) -> dict[str, Tensor]:
        return kd_loss(student_logits, teacher_logits, targets, self.alpha, self.T, teacher_weights)


def _kd_term(
    cfg: KDConfig, student: Tensor, teachers: Tensor, targets: Tensor, weights: Tensor | None, epoch: int
) -> dict[str, Tensor]:
    return kd_loss(student, teachers, targets, cfg.alpha, cfg.T, weights)


DISTILL_LOSSES.add_loss(DistillLoss(KDConfig, _kd_term, ("alpha", "T"), lambda a, b, t: KDConfig(alpha=a, T=t)))
