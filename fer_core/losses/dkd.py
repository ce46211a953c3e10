"""Decoupled knowledge distillation (Zhao et al., CVPR 2022): target-class and non-target-class KD terms."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from fer_core.config import FrozenModel, validate_config
from fer_core.errors import ConfigError
from fer_core.losses._registry import DISTILL_LOSSES, LOSSES, DistillLoss
from fer_core.losses.kd import expand_teachers


class DKDConfig(FrozenModel):
    """DKD: ``loss = w_ce·CE + warmup(epoch)·(alpha·T²·TCKD + beta·T²·NCKD)``.

    The defaults are the team weighting ``(1−α)·CE + α·T²·TCKD + β·T²·NCKD`` with α=0.5, β=4, T=2 (so w_ce = 1−α)
    and no warm-up; the paper's CIFAR setting is ``alpha=1, beta=8, T=4, w_ce=1, warmup_epochs=20``.
    """

    kind: Literal["dkd"] = "dkd"
    alpha: float = Field(0.5, ge=0.0)
    beta: float = Field(4.0, ge=0.0)
    T: float = Field(2.0, gt=0.0)
    w_ce: float = Field(0.5, ge=0.0)
    warmup_epochs: int = Field(0, ge=0)


def _split_logits(logits: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    """``[..., C]`` → (target logit ``[...]``, non-target logits ``[..., C-1]``) by exact boolean masking."""
    c = logits.shape[-1]
    is_target = F.one_hot(targets, c).to(torch.bool).expand_as(logits)
    target = logits.gather(-1, targets.unsqueeze(-1).expand(*logits.shape[:-1], 1)).squeeze(-1)
    others = logits.masked_select(~is_target).view(*logits.shape[:-1], c - 1)
    return target, others


def _binary_log_probs(logits: Tensor, targets: Tensor, T: float) -> tuple[Tensor, Tensor]:
    """Log-probabilities ``[..., 2]`` of {target, rest} and the non-target logits ``[..., C-1]`` (scaled by 1/T).

    ``log p(rest) = logsumexp(non-target) − logsumexp(all)`` stays finite for a confident model, where
    ``log(1 − p_target)`` would be ``log(0)``.
    """
    z = logits / T
    target, others = _split_logits(z, targets)
    lse_all = torch.logsumexp(z, dim=-1)
    log_b = torch.stack([target - lse_all, torch.logsumexp(others, dim=-1) - lse_all], dim=-1)
    return log_b, others


def dkd_divergences(student_logits: Tensor, teacher_logits: Tensor, targets: Tensor, T: float) -> tuple[Tensor, Tensor]:
    """Per-sample TCKD and NCKD, unscaled (no T²).

    ``KL(p_t^T ‖ p_s^T) = TCKD + (1 − p_t^T[target])·NCKD`` holds exactly. With C = 2 the non-target distribution has
    a single class, so NCKD is 0 by definition (a one-point distribution has zero KL) and DKD reduces to TCKD.

    Args:
        student_logits: ``[..., C]``.
        teacher_logits: ``[..., C]``.
        targets: ``[...]`` int64 (broadcast to the leading shape).
        T: temperature, > 0.

    Returns:
        ``(tckd [...], nckd [...])``.

    Raises:
        ConfigError: fewer than 2 classes.
    """
    if student_logits.shape[-1] < 2:
        raise ConfigError(f"DKD needs at least 2 classes, got logits of shape {tuple(student_logits.shape)}")
    targets = targets.expand(student_logits.shape[:-1])
    log_bs, others_s = _binary_log_probs(student_logits, targets, T)
    log_bt, others_t = _binary_log_probs(teacher_logits, targets, T)
    tckd = (log_bt.exp() * (log_bt - log_bs)).sum(-1)
    log_qs = F.log_softmax(others_s, dim=-1)
    log_qt = F.log_softmax(others_t, dim=-1)
    nckd = (log_qt.exp() * (log_qt - log_qs)).sum(-1)
    return tckd, nckd


def warmup_factor(epoch: int, warmup_epochs: int) -> float:
    """``min(epoch / warmup_epochs, 1)``; 1 when ``warmup_epochs`` is 0."""
    return 1.0 if warmup_epochs <= 0 else min(epoch / warmup_epochs, 1.0)


def dkd_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    targets: Tensor,
    epoch: int,
    alpha: float = 0.5,
    beta: float = 4.0,
    T: float = 2.0,
    w_ce: float = 0.5,
    warmup_epochs: int = 0,
    teacher_weights: Tensor | None = None,
) -> dict[str, Tensor]:
    """Zhao et al. CVPR 2022 "Decoupled KD": w_ce·CE + min(epoch/warmup, 1)·(α·T²·TCKD + β·T²·NCKD).

    Args:
        student_logits: ``[B, C]``.
        teacher_logits: ``[B, C]`` or ``[B, M, C]``.
        targets: ``[B]`` int64.
        epoch: the engine's epoch counter (drives the warm-up; 0 gives no distillation when ``warmup_epochs`` > 0).
        alpha: TCKD weight, ≥ 0.
        beta: NCKD weight, ≥ 0.
        T: temperature, > 0.
        w_ce: cross-entropy weight, ≥ 0.
        warmup_epochs: linear warm-up length of the distillation terms (0 = none).
        teacher_weights: ``[B, M]`` per-sample teacher weights, or None for uniform.

    Returns:
        ``{"loss", "ce", "tckd", "nckd"}`` scalars; ``tckd``/``nckd`` include ``T²`` and their weights, not the
        warm-up factor.
    """
    s, t, w = expand_teachers(student_logits, teacher_logits, teacher_weights)
    tckd_b, nckd_b = dkd_divergences(s, t, targets.unsqueeze(1), T)
    tckd = alpha * T * T * (w * tckd_b).sum(1).mean()
    nckd = beta * T * T * (w * nckd_b).sum(1).mean()
    ce = F.cross_entropy(student_logits, targets)
    loss = w_ce * ce + warmup_factor(epoch, warmup_epochs) * (tckd + nckd)
    return {"loss": loss, "ce": ce, "tckd": tckd, "nckd": nckd}


@LOSSES.register("dkd")
class DKDLoss(nn.Module):
    """Module form of :func:`dkd_loss`; arguments as in :class:`DKDConfig`."""

    def __init__(
        self, alpha: float = 0.5, beta: float = 4.0, T: float = 2.0, w_ce: float = 0.5, warmup_epochs: int = 0
    ):
        super().__init__()
        raw = {"alpha": alpha, "beta": beta, "T": T, "w_ce": w_ce, "warmup_epochs": warmup_epochs}
        self.cfg = validate_config(raw, DKDConfig, where="DKDLoss")

    @classmethod
    def from_config(cls, cfg: DKDConfig) -> DKDLoss:
        return cls(**cfg.model_dump(exclude={"kind"}))

    def forward(
        self,
        student_logits: Tensor,
        teacher_logits: Tensor,
        targets: Tensor,
        epoch: int,
        teacher_weights: Tensor | None = None,
    ) -> dict[str, Tensor]:
        c = self.cfg
        return dkd_loss(
            student_logits, teacher_logits, targets, epoch, c.alpha, c.beta, c.T, c.w_ce, c.warmup_epochs,
            teacher_weights,
        )  # fmt: skip


def _dkd_term(
    cfg: DKDConfig, student: Tensor, teachers: Tensor, targets: Tensor, weights: Tensor | None, epoch: int
) -> dict[str, Tensor]:
    return dkd_loss(student, teachers, targets, epoch, cfg.alpha, cfg.beta, cfg.T, cfg.w_ce, cfg.warmup_epochs, weights)


def _dkd_sweep(alpha: float, beta: float, T: float) -> DKDConfig:
    """A sweep point weights CE by ``1 − alpha`` (the team weighting, see :class:`DKDConfig`)."""
    return DKDConfig(alpha=alpha, beta=beta, T=T, w_ce=1 - alpha)


DISTILL_LOSSES.add_loss(DistillLoss(DKDConfig, _dkd_term, ("alpha", "beta", "T"), _dkd_sweep))
