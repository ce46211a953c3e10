"""Typed configuration of a distillation run: strategy, teachers, a registered loss and optional negative learning."""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from fer_core.config import FrozenModel
from fer_core.errors import ConfigError
from fer_core.losses import DISTILL_LOSSES
from fer_core.losses.dkd import DKDConfig
from fer_core.losses.negl import NegLConfig

# The union of every registered distillation loss's config (fer_core.losses imports all its modules first), so a new
# loss module is accepted here without an edit.
_configs = tuple(DISTILL_LOSSES.configs())
DistillLossConfig = Annotated[Union[_configs] if len(_configs) > 1 else _configs[0], Field(discriminator="kind")]  # noqa: UP007


class DistillConfig(FrozenModel):
    """What :func:`fer_core.distill.make_distill_criterion` builds.

    Attributes:
        strategy: a name in :data:`fer_core.distill.STRATEGIES` (checked when the criterion is built).
        teachers: K teacher names, in the order of the teacher-logits axis K.
        weights: K teacher weights (default: equal).
        teacher_temperatures: K calibration temperatures applied to the teacher logits (default: 1).
        fuse: fuse teachers' probabilities or logits (strategies that fuse).
        loss: ``{"kind": <a name in fer_core.losses.DISTILL_LOSSES>, ...}`` (``kd``, ``dkd``, ...).
        negl: optional complementary-label term.
        mode: ``"offline"``: teacher logits precomputed on the un-augmented rows, looked up by row
            (:func:`~fer_core.distill.make_distill_criterion`); ``"online"``: the teacher models score the same
            augmented batch the student sees, inside its training step
            (:func:`~fer_core.distill.make_online_distill_criterion`).
    """

    strategy: str = "single"
    teachers: tuple[str, ...] = Field(min_length=1)
    weights: tuple[float, ...] | None = None
    teacher_temperatures: tuple[float, ...] | None = None
    fuse: Literal["prob", "logit"] = "prob"
    loss: DistillLossConfig = Field(default_factory=DKDConfig)
    negl: NegLConfig | None = None
    mode: Literal["offline", "online"] = "offline"

    @model_validator(mode="after")
    def _lengths(self) -> DistillConfig:
        k = len(self.teachers)
        for name in ("weights", "teacher_temperatures"):
            v = getattr(self, name)
            if v is not None and len(v) != k:
                raise ConfigError(f"{name} has {len(v)} values for {k} teachers {list(self.teachers)}; give one each")
        return self

    @property
    def family(self) -> str:
        """The name a run of this recipe and its seed family carry: ``<strategy>-<loss>``, ``-online`` when online
        (an online and an offline student of one loss are different recipes, compared side by side)."""
        return f"{self.strategy}-{self.loss.kind}" + ("-online" if self.mode == "online" else "")

    def resolved_weights(self) -> list[float]:
        return list(self.weights) if self.weights is not None else [1.0] * len(self.teachers)

    def resolved_temperatures(self) -> list[float]:
        return list(self.teacher_temperatures) if self.teacher_temperatures is not None else [1.0] * len(self.teachers)
