"""Typed configuration of a Nested Learning run (deep-memory optimizer, meta schedule, memory bounds, gates)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from fer_core.config import FrozenModel, validate_config
from fer_core.errors import ConfigError
from fer_core.train.config import SmokeGates, TrainConfig

# NestedConfig fields that, when set, override the TrainConfig field of the same name (same meaning there).
RUN_FIELDS = ("epochs", "batch_size", "lr", "weight_decay", "accum_steps", "amp", "seed", "device")


class NestedGates(FrozenModel):
    """Smoke gates checked after ``epoch`` completed epochs (or the last one if the run is shorter).

    They become the engine's :class:`~fer_core.train.config.SmokeGates` (no checkpoint before they pass; the train
    loss must not have risen since the first steps; the gradient-norm gate keeps its default).
    """

    enabled: bool = True
    epoch: int = Field(3, ge=1)
    max_val_loss: float = Field(3.5, gt=0)
    min_macro_f1: float = Field(0.45, ge=0, le=1)

    def smoke(self) -> SmokeGates | None:
        """The engine's gates for these, or None when disabled."""
        if not self.enabled:
            return None
        return SmokeGates(check_epochs=self.epoch, min_loss_drop=0.0, min_macro_f1=self.min_macro_f1,
                          max_val_loss=self.max_val_loss)  # fmt: skip


class NestedConfig(FrozenModel):
    """Nested Learning student training, run by the training engine with the deep-memory optimizer plugged in.

    The optimizer is AdamW with its first moment replaced by a learned per-element memory (see
    :mod:`fer_core.nested.optimizer`); the memory is meta-trained every ``meta_every`` steps through the last
    ``unroll`` inner steps on a held-out slice of the training rows.

    ``epochs``, ``batch_size`` (the effective batch of one inner step, split into ``accum_steps`` micro-batches),
    ``lr``, ``weight_decay``, ``accum_steps``, ``amp``, ``seed`` and ``device`` are optional overrides of the
    student's :class:`~fer_core.train.config.TrainConfig` (None: use its value); everything else about the run
    (schedule, clipping, threads, determinism, sampler) is the TrainConfig's.
    """

    kind: Literal["nested"] = "nested"
    epochs: int | None = Field(None, ge=1)
    batch_size: int | None = Field(None, ge=1)
    lr: float | None = Field(None, gt=0)
    weight_decay: float | None = Field(None, ge=0)
    accum_steps: int | None = Field(None, ge=1)
    amp: bool | None = None
    seed: int | None = None
    device: Literal["cpu", "cuda", "auto"] | None = None
    beta1: float = Field(0.9, ge=0, lt=1)
    beta2: float = Field(0.999, ge=0, lt=1)
    eps: float = Field(1e-8, gt=0)
    memory_hidden: int = Field(8, ge=1)
    memory_layers: int = Field(2, ge=1)
    meta_lr: float = Field(1e-3, gt=0)
    meta_every: int = Field(4, ge=1)
    unroll: int = Field(1, ge=1)
    meta_batch_size: int = Field(64, ge=1)
    meta_holdout: float = Field(0.1, gt=0, lt=1)
    checkpoint_activations: bool = False
    memory_log_every: int = Field(50, ge=1)
    augment: bool = True
    gates: NestedGates = Field(default_factory=NestedGates)

    @model_validator(mode="after")
    def _unroll_fits(self) -> NestedConfig:
        if self.unroll > self.meta_every:
            raise ConfigError(
                f"unroll={self.unroll} exceeds meta_every={self.meta_every}; the unrolled steps are the last steps of "
                "each meta window, so set unroll ≤ meta_every"
            )
        return self

    def train_config(self, base: TrainConfig) -> TrainConfig:
        """The engine's config for this run: ``base`` with the overrides set here and these gates as its smoke gates.

        Raises:
            ConfigError: the combination is invalid (validated as a whole).
        """
        over = {k: getattr(self, k) for k in RUN_FIELDS if getattr(self, k) is not None}
        smoke = self.gates.smoke()
        data = base.model_dump(mode="json") | over | {"smoke": smoke.model_dump() if smoke else None}
        return validate_config(data, TrainConfig, where="NestedConfig.train_config")
