"""Typed configuration of a Nested Learning run (deep-memory optimizer, meta schedule, memory bounds, gates)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from fer_core.config import FrozenModel
from fer_core.errors import ConfigError


class NestedGates(FrozenModel):
    """Smoke gates checked after ``epoch`` completed epochs (or the last one if the run is shorter)."""

    enabled: bool = True
    epoch: int = Field(3, ge=1)
    max_val_loss: float = Field(3.5, gt=0)
    min_macro_f1: float = Field(0.45, ge=0, le=1)


class NestedConfig(FrozenModel):
    """Nested Learning student training.

    The optimizer is AdamW with its first moment replaced by a learned per-element memory (see
    :mod:`fer_core.nested.optimizer`); the memory is meta-trained every ``meta_every`` steps through the last
    ``unroll`` inner steps on a held-out slice of the training rows.
    """

    kind: Literal["nested"] = "nested"
    epochs: int = Field(3, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0)
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
    accum_steps: int = Field(1, ge=1)
    amp: bool = True
    checkpoint_activations: bool = False
    memory_log_every: int = Field(50, ge=1)
    augment: bool = True
    seed: int = 0
    device: Literal["cpu", "cuda", "auto"] = "auto"
    gates: NestedGates = Field(default_factory=NestedGates)

    @model_validator(mode="after")
    def _unroll_fits(self) -> NestedConfig:
        if self.unroll > self.meta_every:
            raise ConfigError(
                f"unroll={self.unroll} exceeds meta_every={self.meta_every}; the unrolled steps are the last steps of "
                "each meta window, so set unroll ≤ meta_every"
            )
        return self
