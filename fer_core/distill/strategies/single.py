"""Single-teacher strategy: the one teacher's calibrated logits are the target."""

from __future__ import annotations

from torch import Tensor

from fer_core.distill.strategies._base import STRATEGIES, TeacherStrategy, ones_like_batch


@STRATEGIES.register("single")
class SingleTeacher(TeacherStrategy):
    """Exactly one teacher; its logits divided by its calibration temperature."""

    min_teachers = 1
    max_teachers = 1

    def mix(self, calibrated: Tensor, targets: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
        return calibrated, ones_like_batch(calibrated.shape[0], calibrated.device)
