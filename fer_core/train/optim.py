"""Optimizer and learning-rate schedule configs (tagged unions) and the builders the engine calls."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import torch
from pydantic import Field, model_validator
from torch import nn
from torch.optim.lr_scheduler import LRScheduler, OneCycleLR

from fer_core.config import FrozenModel
from fer_core.errors import ConfigError
from fer_core.train.schedule import warmup_cosine

DecayGroups = Literal["all", "no_norm_bias"]


class AdamWConfig(FrozenModel):
    """AdamW (Loshchilov & Hutter, ICLR 2019) at ``TrainConfig.lr`` / ``TrainConfig.weight_decay``.

    Attributes:
        betas: moment decay rates (OneCycle with ``cycle_momentum`` drives ``betas[0]``).
        eps: denominator epsilon.
        decay: which parameters decay: ``"all"``, or ``"no_norm_bias"`` (1-D tensors — biases and norm scales —
            get none).
    """

    kind: Literal["adamw"] = "adamw"
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = Field(1e-8, gt=0)
    decay: DecayGroups = "no_norm_bias"


class SGDConfig(FrozenModel):
    """SGD with (Nesterov) momentum at ``TrainConfig.lr`` / ``TrainConfig.weight_decay`` (coupled L2 decay).

    Attributes:
        momentum: momentum factor (> 0 when ``nesterov``).
        nesterov: Nesterov momentum.
        decay: as in :class:`AdamWConfig`.
    """

    kind: Literal["sgd"] = "sgd"
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = True
    decay: DecayGroups = "no_norm_bias"

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> SGDConfig:
        if self.nesterov and self.momentum == 0:
            raise ConfigError("optimizer: Nesterov SGD needs momentum > 0; set momentum (e.g. 0.9) or nesterov: false")
        return self


OptimizerConfig = Annotated[AdamWConfig | SGDConfig, Field(discriminator="kind")]


class WarmupCosineConfig(FrozenModel):
    """Linear warm-up over ``TrainConfig.warmup_epochs`` then cosine decay to 0, stepped per optimizer step."""

    kind: Literal["warmup_cosine"] = "warmup_cosine"


class OneCycleConfig(FrozenModel):
    """1cycle (Smith & Topin 2019), as ``torch.optim.lr_scheduler.OneCycleLR`` with peak ``TrainConfig.lr``.

    The lr rises from ``lr / div_factor`` to ``lr`` over ``pct_start`` of all steps, then anneals to
    ``lr / (div_factor · final_div_factor)``; its warm-up is ``pct_start`` (``TrainConfig.warmup_epochs`` is not used).

    Attributes:
        pct_start: fraction of the steps spent rising.
        div_factor: initial lr = peak / div_factor.
        final_div_factor: final lr = initial lr / final_div_factor.
        anneal: ``"cos"`` or ``"linear"`` annealing.
        cycle_momentum: cycle momentum (SGD) or ``betas[0]`` (AdamW) inversely between the two bounds.
        base_momentum: momentum at the lr peak.
        max_momentum: momentum at the start and end.
    """

    kind: Literal["onecycle"] = "onecycle"
    pct_start: float = Field(0.3, gt=0, lt=1)
    div_factor: float = Field(25.0, gt=0)
    final_div_factor: float = Field(1e4, gt=0)
    anneal: Literal["cos", "linear"] = "cos"
    cycle_momentum: bool = True
    base_momentum: float = Field(0.85, ge=0, lt=1)
    max_momentum: float = Field(0.95, ge=0, lt=1)


ScheduleConfig = Annotated[WarmupCosineConfig | OneCycleConfig, Field(discriminator="kind")]


def param_groups(model: nn.Module, weight_decay: float, decay: DecayGroups) -> list[dict[str, Any]]:
    """Trainable parameters split into a decayed and an undecayed group.

    Args:
        model: the model.
        weight_decay: decay of the decayed group.
        decay: ``"all"`` (every parameter decays) or ``"no_norm_bias"`` (1-D tensors get 0).

    Returns:
        ``[{"params", "weight_decay"}]`` for ``"all"``; for ``"no_norm_bias"`` a second group with weight decay 0.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if decay == "all":
        return [{"params": params, "weight_decay": weight_decay}]
    return [{"params": [p for p in params if p.ndim > 1], "weight_decay": weight_decay},
            {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]  # fmt: skip


def build_optimizer(model: nn.Module, cfg: Any) -> torch.optim.Optimizer:
    """The optimizer ``cfg.optimizer`` describes, at ``cfg.lr`` and ``cfg.weight_decay`` (``cfg``: a TrainConfig)."""
    oc = cfg.optimizer
    groups = param_groups(model, cfg.weight_decay, oc.decay)
    if oc.kind == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=oc.momentum, nesterov=oc.nesterov)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=oc.betas, eps=oc.eps)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: Any, steps_per_epoch: int) -> LRScheduler:
    """The per-step schedule ``cfg.schedule`` describes over ``cfg.epochs · steps_per_epoch`` optimizer steps.

    Raises:
        ConfigError: OneCycle with ``cycle_momentum`` on an optimizer that has neither ``momentum`` nor ``betas``.
    """
    sc, total = cfg.schedule, cfg.epochs * steps_per_epoch
    if sc.kind == "warmup_cosine":
        return warmup_cosine(optimizer, round(cfg.warmup_epochs * steps_per_epoch), total)
    group = optimizer.defaults
    if sc.cycle_momentum and "momentum" not in group and "betas" not in group:
        raise ConfigError(f"schedule onecycle: cycle_momentum needs an optimizer with momentum or betas, "
                          f"{type(optimizer).__name__} has neither; set cycle_momentum: false")  # fmt: skip
    return OneCycleLR(
        optimizer, max_lr=cfg.lr, total_steps=total, pct_start=sc.pct_start, anneal_strategy=sc.anneal,
        cycle_momentum=sc.cycle_momentum, base_momentum=sc.base_momentum, max_momentum=sc.max_momentum,
        div_factor=sc.div_factor, final_div_factor=sc.final_div_factor,
    )  # fmt: skip
