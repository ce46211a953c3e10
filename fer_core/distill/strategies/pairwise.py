"""Pairwise (ensemble-target) strategy: fuse the teachers first, then one KD/DKD term against the fusion."""

from __future__ import annotations

from torch import Tensor

from fer_core.distill.strategies._base import STRATEGIES, TeacherStrategy, fuse_teachers, ones_like_batch


@STRATEGIES.register("pairwise")
class PairwiseFusion(TeacherStrategy):
    """Target = weighted fusion of ≥ 2 calibrated teachers (probabilities or logits, see ``fuse``).

    With ``fuse="prob"`` the target distribution at KD temperature 1 is the mixture ``Σ_k w_k p_k``.
    """

    min_teachers = 2

    def mix(self, calibrated: Tensor, targets: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
        b = calibrated.shape[0]
        fused = fuse_teachers(calibrated, self.weights.expand(b, -1), self.fuse)
        return fused, ones_like_batch(b, calibrated.device)
