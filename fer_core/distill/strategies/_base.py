"""Base class and registry of multi-teacher strategies (how K teachers become the distillation targets)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from fer_core.errors import ConfigError
from fer_core.registry import Registry

STRATEGIES: Registry = Registry("distillation strategy")

FuseSpace = Literal["prob", "logit"]


class TeacherStrategy:
    """Turns a batch of teacher logits into M distillation targets and their per-sample weights.

    Each teacher's logits are first divided by its calibration temperature. Subclasses implement :meth:`mix`.

    Args:
        teacher_names: K teacher identifiers (for messages and logging).
        weights: K non-negative weights with a positive sum (normalised here).
        temperatures: K per-teacher calibration temperatures, > 0.
        class_f1: ``[K, C]`` teachers' validation F1 per class, or None (only class-aware strategies need it).
        fuse: fuse calibrated probabilities (``"prob"``: targets are ``log Σ_k w_k softmax(z_k/T_k)``) or logits
            (``"logit"``: ``Σ_k w_k z_k/T_k``); used by the strategies that fuse.

    Raises:
        ConfigError: lengths disagree, a negative weight, a zero weight sum, a non-positive temperature.
    """

    min_teachers = 1
    max_teachers: int | None = None

    def __init__(
        self,
        teacher_names: list[str],
        weights: list[float],
        temperatures: list[float],
        class_f1: np.ndarray | None = None,
        fuse: FuseSpace = "prob",
    ):
        k = len(teacher_names)
        name = type(self).__name__
        if len(weights) != k or len(temperatures) != k:
            raise ConfigError(
                f"{name}: {k} teachers {teacher_names} but {len(weights)} weights and {len(temperatures)} "
                "temperatures; give one weight and one temperature per teacher"
            )
        if k < self.min_teachers or (self.max_teachers is not None and k > self.max_teachers):
            most = "" if self.max_teachers is None else f" and at most {self.max_teachers}"
            raise ConfigError(f"{name} needs at least {self.min_teachers}{most} teachers, got {k}: {teacher_names}")
        w = np.asarray(weights, dtype=np.float64)
        if np.any(w < 0) or not np.isfinite(w).all() or w.sum() <= 0:
            raise ConfigError(f"{name}: teacher weights must be finite, ≥ 0 with a positive sum, got {list(weights)}")
        t = np.asarray(temperatures, dtype=np.float64)
        if np.any(~np.isfinite(t) | (t <= 0)):
            raise ConfigError(f"{name}: teacher temperatures must be finite and > 0, got {list(temperatures)}")
        if fuse not in ("prob", "logit"):
            raise ConfigError(f"{name}: fuse must be 'prob' or 'logit', got {fuse!r}")
        self.teacher_names = list(teacher_names)
        self.weights = torch.as_tensor(w / w.sum(), dtype=torch.float32)
        self.temperatures = torch.as_tensor(t, dtype=torch.float32)
        self.class_f1 = None if class_f1 is None else np.asarray(class_f1, dtype=np.float64)
        self.fuse = fuse

    def prepare(self, sample_ids: Sequence[str]) -> None:
        """Precompute anything keyed by the dataset rows (row ``i`` has ``sample_ids[i]``); default: nothing."""

    def calibrate(self, teacher_logits: Tensor) -> Tensor:
        """``[B, K, C]`` → ``[B, K, C]`` divided by each teacher's calibration temperature."""
        return teacher_logits / self.temperatures.to(teacher_logits.device).view(1, -1, 1)

    def __call__(self, teacher_logits: Tensor, targets: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
        """Distillation targets for a batch.

        Args:
            teacher_logits: ``[B, K, C]`` raw teacher logits of the batch rows.
            targets: ``[B]`` int64 true labels.
            idx: ``[B]`` dataset row positions.

        Returns:
            ``(target_logits [B, M, C], weights [B, M])``; the loss is ``Σ_m weights[b, m]·term(b, m)``.
        """
        return self.mix(self.calibrate(teacher_logits.float()), targets, idx)

    def mix(self, calibrated: Tensor, targets: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError


def fuse_teachers(calibrated: Tensor, weights: Tensor, space: FuseSpace) -> Tensor:
    """Fuse K calibrated teachers with per-sample weights.

    Args:
        calibrated: ``[B, K, C]`` logits already divided by the teachers' temperatures.
        weights: ``[B, K]`` rows summing to 1.
        space: ``"prob"`` → ``log Σ_k w_k softmax(z_k)`` (log of the mixture, a valid logit vector);
            ``"logit"`` → ``Σ_k w_k z_k``.

    Returns:
        ``[B, 1, C]`` fused target logits.
    """
    w = weights.to(calibrated.device, calibrated.dtype).unsqueeze(-1)
    if space == "logit":
        return (w * calibrated).sum(1, keepdim=True)
    # log Σ w p = logsumexp(log w + log p): no log(0) even for confident teachers; zero weights drop out via -inf
    log_mix = torch.logsumexp(torch.log(w) + torch.log_softmax(calibrated, dim=-1), dim=1, keepdim=True)
    return log_mix


def ones_like_batch(b: int, device: torch.device) -> Tensor:
    """``[B, 1]`` weights of one target per sample."""
    return torch.ones(b, 1, device=device)
