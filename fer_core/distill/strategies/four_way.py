"""Class-aware fusion ("four_way"): per-class teacher weights from the teachers' validation F1."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from fer_core.distill.strategies._base import STRATEGIES, TeacherStrategy, fuse_teachers, ones_like_batch
from fer_core.errors import ConfigError


def class_weights(class_f1: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Per-class teacher weights ``W [C, K]`` from validation F1.

    ``W[c, k] = w_k·√(F1[k, c] / mean_j F1[j, c]) / Σ_i w_i·√(F1[i, c] / mean_j F1[j, c])``: teachers better than
    the average on class c gain weight, with the square root damping the ratio. A class on which every teacher
    has F1 = 0 keeps the prior ``w``.

    Args:
        class_f1: ``[K, C]`` F1 in ``[0, 1]``.
        prior: ``[K]`` normalised teacher weights.

    Returns:
        ``[C, K]``, rows summing to 1.
    """
    mean = class_f1.mean(0, keepdims=True)
    ratio = np.divide(class_f1, mean, out=np.zeros_like(class_f1), where=mean > 0)
    raw = prior[:, None] * np.sqrt(ratio)
    sums = raw.sum(0, keepdims=True)
    w = np.where(sums > 0, raw / np.where(sums > 0, sums, 1.0), prior[:, None])
    return w.T


@STRATEGIES.register("four_way")
@STRATEGIES.register("fourway_split")
class ClassAwareFusion(TeacherStrategy):
    """Each sample fuses the teachers with the weights of its TRUE class (see :func:`class_weights`).

    Raises:
        ConfigError: ``class_f1`` missing, of the wrong shape, or outside ``[0, 1]``.
    """

    min_teachers = 2

    def __init__(self, teacher_names, weights, temperatures, class_f1=None, fuse="prob"):
        super().__init__(teacher_names, weights, temperatures, class_f1, fuse)
        f1 = self.class_f1
        if f1 is None:
            raise ConfigError("four_way needs class_f1 [K, C] (the teachers' validation F1 per class); pass class_f1=")
        if f1.ndim != 2 or f1.shape[0] != len(teacher_names):
            raise ConfigError(f"class_f1 must be [K={len(teacher_names)}, C], got shape {f1.shape}")
        if not np.isfinite(f1).all() or f1.min() < 0 or f1.max() > 1:
            raise ConfigError(f"class_f1 values must lie in [0, 1], got min {f1.min()} max {f1.max()}")
        self.table = torch.as_tensor(class_weights(f1, self.weights.double().numpy()), dtype=torch.float32)

    def mix(self, calibrated: Tensor, targets: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
        if calibrated.shape[2] != self.table.shape[0]:
            raise ConfigError(f"class_f1 covers {self.table.shape[0]} classes, logits have {calibrated.shape[2]}")
        w = self.table.to(calibrated.device).index_select(0, targets.long())
        return fuse_teachers(calibrated, w, self.fuse), ones_like_batch(calibrated.shape[0], calibrated.device)
