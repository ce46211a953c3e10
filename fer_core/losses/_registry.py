"""The loss registries: classification losses (name → module class) and distillation losses (name → DistillLoss)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from fer_core.config import FrozenModel
from fer_core.errors import ConfigError
from fer_core.registry import Registry

LOSSES: Registry = Registry("loss")

# (cfg, student_logits [B, C], teacher_logits [B, M, C], targets [B], teacher_weights [B, M] | None, epoch)
#   -> {"loss": scalar, <term>: scalar, ...}
DistillLossFn = Callable[[Any, Tensor, Tensor, Tensor, "Tensor | None", int], dict[str, Tensor]]
SWEEP_AXES = ("alpha", "beta", "T")


@dataclass(frozen=True)
class DistillLoss:
    """One distillation loss: its config, its function (one call shape for all) and how a sweep point maps to it.

    Attributes:
        config: the pydantic config; its ``kind`` Literal is the registered name.
        fn: ``fn(cfg, student [B, C], teachers [B, M, C], targets [B], teacher_weights [B, M] | None, epoch)``
            returning ``{"loss", ...}`` scalars.
        axes: which sweep axes of ``("alpha", "beta", "T")`` the loss reads (the others are not iterated).
        from_sweep: ``from_sweep(alpha, beta, T)`` → a config (an axis not in ``axes`` arrives as None).
    """

    config: type[FrozenModel]
    fn: DistillLossFn
    axes: tuple[str, ...]
    from_sweep: Callable[[Any, Any, Any], FrozenModel]

    @property
    def name(self) -> str:
        return str(self.config.model_fields["kind"].default)


class DistillLossRegistry(Registry[DistillLoss]):
    """The registry of distillation losses, read by the criterion, the profile check and the sweep."""

    def add_loss(self, loss: DistillLoss) -> DistillLoss:
        """Register ``loss`` under its config's ``kind``.

        Raises:
            ConfigError: a duplicate name or an axis outside :data:`SWEEP_AXES`.
        """
        bad = sorted(set(loss.axes) - set(SWEEP_AXES))
        if bad:
            raise ConfigError(f"distillation loss {loss.name!r}: sweep axes {bad} unknown; valid: {list(SWEEP_AXES)}")
        self.add(loss.name, loss)
        return loss

    def configs(self) -> list[type[FrozenModel]]:
        """The config classes in name order (the members of ``DistillConfig.loss``'s union)."""
        return [self.get(n).config for n in self.names()]

    def sweep_configs(
        self, kind: str, alphas: Sequence[float], betas: Sequence[float], temperatures: Sequence[float]
    ) -> list[FrozenModel]:
        """Every config of the grid ``alphas × betas × temperatures`` for ``kind``, iterating only the axes it reads.

        Raises:
            ConfigError: unknown ``kind`` (lists the valid names) or a grid value the config refuses.
        """
        loss = self.get(kind)
        grids = {"alpha": alphas, "beta": betas, "T": temperatures}
        axes = [grids[a] if a in loss.axes else [None] for a in SWEEP_AXES]
        return [loss_config_for(kind, a, b, t) for a, b, t in itertools.product(*axes)]


DISTILL_LOSSES = DistillLossRegistry("distillation loss")


def loss_config_for(kind: str, alpha: float | None, beta: float | None, T: float | None) -> FrozenModel:
    """The config of distillation loss ``kind`` at one sweep point.

    Raises:
        ConfigError: unknown ``kind`` (lists the valid names) or values its config refuses.
    """
    loss = DISTILL_LOSSES.get(kind)
    try:
        return loss.from_sweep(alpha, beta, T)
    except ValueError as e:  # pydantic's ValidationError is a ValueError
        raise ConfigError(f"sweep point alpha={alpha} beta={beta} T={T} is invalid for loss {kind!r}: {e}") from e
