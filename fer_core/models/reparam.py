"""Inference-time reparameterisation (RepVGG / MobileOne branch fusion) of models that have it, before export."""

from __future__ import annotations

import copy

import torch
from torch import nn

_HOOKS = ("reparameterize", "switch_to_deploy", "fuse")


def has_reparam(model: nn.Module) -> bool:
    """True when some submodule has a fusion hook (``reparameterize``, ``switch_to_deploy`` or ``fuse``)."""
    return any(hasattr(m, h) for m in model.modules() for h in _HOOKS if m is not model)


def reparameterize(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` with every fusion hook applied (timm's ``reparameterize_model``); ``model``
    itself unchanged. A model without hooks is returned as is (no copy).

    The copy computes the same function up to float rounding (branch kernels summed into one convolution).
    """
    if not has_reparam(model):
        return model
    from timm.utils.model import reparameterize_model

    was_training = model.training
    model.eval()  # fusion folds BatchNorm running statistics: only valid in eval mode
    try:
        fused = reparameterize_model(copy.deepcopy(model), inplace=True)
    finally:
        model.train(was_training)
    return fused.eval()


@torch.no_grad()
def reparam_max_diff(model: nn.Module, x: torch.Tensor) -> float:
    """max |model(x) − reparameterize(model)(x)| in eval mode (0.0 for a model without hooks)."""
    fused = reparameterize(model)
    was_training = model.training
    model.eval()
    try:
        return float((model(x) - fused(x)).abs().max())
    finally:
        model.train(was_training)
