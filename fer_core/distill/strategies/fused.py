"""Fused (multi-term) strategy: one KD/DKD term per teacher, summed with the teacher weights."""

from __future__ import annotations

from torch import Tensor

from fer_core.distill.strategies._base import STRATEGIES, TeacherStrategy


@STRATEGIES.register("fused")
class FusedTerms(TeacherStrategy):
    """Loss = ``Σ_k w_k · term(student, teacher_k)``.

    For KL terms this upper-bounds the pairwise objective (KL is convex in its first argument), so the two differ.
    """

    def mix(self, calibrated: Tensor, targets: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
        b = calibrated.shape[0]
        return calibrated, self.weights.to(calibrated.device).expand(b, -1)
