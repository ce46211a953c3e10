"""Deep-memory AdamW: the first moment is a learned associative memory, meta-trained through the inner update.

Per element, with ``ĝ = g / (√v̂ + eps)`` (v the usual second-moment EMA):
``m_t = β1·m_{t−1} + (1−β1)·ĝ + MLP_φ([ĝ, m_{t−1}])``, ``θ_t = θ_{t−1} − lr·(m_t / (1 − β1^t) + wd·θ_{t−1})``.
The EMA is the memory's prior (φ small at init, so training starts as AdamW on normalised gradients); φ learns
the correction from meta-gradients of a held-out loss at ``θ_t``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fer_core.nested.config import NestedConfig
from fer_core.nested.memory import MemoryMLP

_FEATURE_CLIP = 10.0  # normalised features beyond ±10 carry no extra signal and would saturate the tanh memory


class DeepMemoryOptimizer:
    """Holds the flat optimizer state ``m, v [P]`` and computes (optionally differentiable) inner updates.

    Args:
        shapes: shapes of the trained parameters, in order.
        memory: the memory MLP (its parameters are the meta-parameters φ).
        cfg: learning rates, betas, eps, weight decay.
        device: where the state lives.
    """

    def __init__(self, shapes: list[torch.Size], memory: MemoryMLP, cfg: NestedConfig, device: torch.device):
        self.shapes = shapes
        self.sizes = [s.numel() for s in shapes]
        p = sum(self.sizes)
        self.memory = memory
        self.cfg = cfg
        self.m = torch.zeros(p, device=device)
        self.v = torch.zeros(p, device=device)
        self.t = 0

    def flatten(self, tensors: list[Tensor]) -> Tensor:
        return torch.cat([x.reshape(-1) for x in tensors])

    def unflatten(self, flat: Tensor) -> list[Tensor]:
        return [c.view(s) for c, s in zip(torch.split(flat, self.sizes), self.shapes, strict=True)]

    def step(self, params: list[Tensor], grads: list[Tensor], m_prev: Tensor, t: int) -> tuple[list[Tensor], Tensor]:
        """One inner update; differentiable w.r.t. φ (and w.r.t. params/grads if they carry graphs).

        Args:
            params: current parameters θ (list, shapes as ``shapes``).
            grads: ∇L at θ (same shapes).
            m_prev: ``[P]`` previous memory output.
            t: 1-based step count (bias correction).

        Returns:
            ``(new params, m_t [P])``; ``self.v`` is updated in place (it never needs a graph: it depends on φ only
            through g², whose contribution to the meta-gradient is second order and dropped).
        """
        c = self.cfg
        g = self.flatten(grads).float()
        self.v = c.beta2 * self.v + (1 - c.beta2) * g.detach() ** 2
        v_hat = self.v / (1 - c.beta2**t)
        g_hat = g / (v_hat.sqrt() + c.eps)
        feats = torch.stack([g_hat, m_prev], dim=1).clamp(-_FEATURE_CLIP, _FEATURE_CLIP)
        m = c.beta1 * m_prev + (1 - c.beta1) * g_hat + self.memory(feats)
        update = self.unflatten(m / (1 - c.beta1**t))
        new = [p - c.lr * (u.to(p.dtype) + c.weight_decay * p) for p, u in zip(params, update, strict=True)]
        return new, m
