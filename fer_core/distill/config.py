"""Typed configuration of a distillation run: strategy, teachers, loss (KD | DKD) and optional negative learning."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from fer_core.config import FrozenModel
from fer_core.errors import ConfigError
from fer_core.losses.dkd import DKDConfig
from fer_core.losses.kd import KDConfig
from fer_core.losses.negl import NegLConfig

DistillLossConfig = Annotated[KDConfig | DKDConfig, Field(discriminator="kind")]


class DistillConfig(FrozenModel):
    """What :func:`fer_core.distill.make_distill_criterion` builds.

    Attributes:
        strategy: a name in :data:`fer_core.distill.STRATEGIES` (checked when the criterion is built).
        teachers: K teacher names, in the order of the teacher-logits axis K.
        weights: K teacher weights (default: equal).
        teacher_temperatures: K calibration temperatures applied to the teacher logits (default: 1).
        fuse: fuse teachers' probabilities or logits (strategies that fuse).
        loss: ``{"kind": "kd", ...}`` or ``{"kind": "dkd", ...}``.
        negl: optional complementary-label term.
    """

    strategy: str = "single"
    teachers: tuple[str, ...] = Field(min_length=1)
    weights: tuple[float, ...] | None = None
    teacher_temperatures: tuple[float, ...] | None = None
    fuse: Literal["prob", "logit"] = "prob"
    loss: DistillLossConfig = Field(default_factory=DKDConfig)
    negl: NegLConfig | None = None

    @model_validator(mode="after")
    def _lengths(self) -> DistillConfig:
        k = len(self.teachers)
        for name in ("weights", "teacher_temperatures"):
            v = getattr(self, name)
            if v is not None and len(v) != k:
                raise ConfigError(f"{name} has {len(v)} values for {k} teachers {list(self.teachers)}; give one each")
        return self

    def resolved_weights(self) -> list[float]:
        return list(self.weights) if self.weights is not None else [1.0] * len(self.teachers)

    def resolved_temperatures(self) -> list[float]:
        return list(self.teacher_temperatures) if self.teacher_temperatures is not None else [1.0] * len(self.teachers)
