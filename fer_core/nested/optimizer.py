"""Deep-memory AdamW: the first moment is a learned associative memory, meta-trained through the inner update.

Per element, with ``ĝ = g / (√v̂ + eps)`` (v the usual second-moment EMA):
``m_t = β1·m_{t−1} + (1−β1)·ĝ + MLP_φ([ĝ, m_{t−1}])``, ``θ_t = θ_{t−1} − lr·(m_t / (1 − β1^t) + wd·θ_{t−1})``.
The EMA is the memory's prior (φ small at init, so training starts as AdamW on normalised gradients); φ learns
the correction from meta-gradients of a held-out loss at ``θ_t``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from fer_core.errors import CheckpointMismatchError
from fer_core.nested.config import NestedConfig
from fer_core.nested.memory import MemoryMLP

_FEATURE_CLIP = 10.0  # normalised features beyond ±10 carry no extra signal and would saturate the tanh memory


class DeepMemoryOptimizer(torch.optim.Optimizer):
    """A torch optimizer (one parameter group, so the engine's schedule drives ``lr``) with a differentiable mode.

    Outside a meta window :meth:`step` is an ordinary in-place update from ``.grad``. Inside one (opened by
    :meth:`open_window`) the updates act on a differentiable copy ``θ`` of the parameters, from gradients the caller
    passes, so that a held-out loss at the window's end back-propagates into the memory φ (:meth:`close_window`).
    All state (``m``, ``v``, ``t``, φ, the meta-optimizer) is in :meth:`state_dict`, which is the engine's resume state.

    Args:
        params: the trained parameters, in order.
        memory: the memory MLP (its parameters are the meta-parameters φ).
        cfg: betas, eps and the meta learning rate.
        lr: inner learning rate (the engine's scheduler scales it).
        weight_decay: decoupled weight decay on every parameter.
    """

    def __init__(self, params: Iterable[Tensor], memory: MemoryMLP, cfg: NestedConfig, lr: float, weight_decay: float):
        params = list(params)
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay})
        self.shapes = [p.shape for p in params]
        self.sizes = [p.numel() for p in params]
        self.memory, self.cfg = memory, cfg
        n, device = sum(self.sizes), params[0].device
        self.m = torch.zeros(n, device=device)
        self.v = torch.zeros(n, device=device)
        self.t = 0
        self.meta_opt = torch.optim.Adam(memory.parameters(), lr=cfg.meta_lr)
        self.meta_steps = 0
        self.last_meta_loss = float("nan")
        self._window: tuple[list[Tensor], Tensor] | None = None

    @property
    def params(self) -> list[Tensor]:
        return self.param_groups[0]["params"]

    @property
    def in_window(self) -> bool:
        return self._window is not None

    @property
    def window_params(self) -> list[Tensor]:
        """``θ`` of the open window (carries the graph back to φ); the model's parameters move at its close."""
        if self._window is None:
            raise RuntimeError("no meta window is open")
        return self._window[0]

    def flatten(self, tensors: list[Tensor]) -> Tensor:
        return torch.cat([x.reshape(-1) for x in tensors])

    def unflatten(self, flat: Tensor) -> list[Tensor]:
        return [c.view(s) for c, s in zip(torch.split(flat, self.sizes), self.shapes, strict=True)]

    def update(self, params: list[Tensor], grads: list[Tensor], m_prev: Tensor) -> tuple[list[Tensor], Tensor]:
        """One inner update (``t`` advances); differentiable w.r.t. φ (and w.r.t. params/grads if they carry graphs).

        Args:
            params: current parameters θ (shapes as the optimizer's parameters).
            grads: ∇L at θ (same shapes).
            m_prev: ``[P]`` previous memory output.

        Returns:
            ``(new params, m_t [P])``; ``self.v`` is updated in place (it never needs a graph: it depends on φ only
            through g², whose contribution to the meta-gradient is second order and dropped).
        """
        c, group = self.cfg, self.param_groups[0]
        self.t += 1
        g = self.flatten(grads).float()
        self.v = c.beta2 * self.v + (1 - c.beta2) * g.detach() ** 2
        v_hat = self.v / (1 - c.beta2**self.t)
        g_hat = g / (v_hat.sqrt() + c.eps)
        feats = torch.stack([g_hat, m_prev], dim=1).clamp(-_FEATURE_CLIP, _FEATURE_CLIP)
        m = c.beta1 * m_prev + (1 - c.beta1) * g_hat + self.memory(feats)
        update = self.unflatten(m / (1 - c.beta1**self.t))
        lr, wd = group["lr"], group["weight_decay"]
        new = [p - lr * (u.to(p.dtype) + wd * p) for p, u in zip(params, update, strict=True)]
        return new, m

    def step(self, closure=None, grads: list[Tensor] | None = None):  # noqa: ANN001 - torch's signature
        """One inner step: in place from ``.grad`` (no window), or on the window's ``θ`` from ``grads``.

        Args:
            closure: torch's optional loss re-evaluation (called under grad, its value returned).
            grads: inside a window, ∇L at ``θ`` (may carry graphs); ignored outside one.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if self._window is not None:
            if grads is None:
                raise RuntimeError("a meta window is open: pass the gradients at its θ as step(grads=...)")
            self._window = self.update(self._window[0], list(grads), self._window[1])
            return loss
        with torch.no_grad():
            g = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
            new, self.m = self.update(self.params, g, self.m)
            for p, q in zip(self.params, new, strict=True):
                p.copy_(q)
        return loss

    def open_window(self) -> None:
        """Start differentiable updates from a detached copy of the current parameters and memory state."""
        theta = [p.detach().clone().requires_grad_(True) for p in self.params]
        self._window = (theta, self.m)

    def close_window(self, meta_loss: Tensor) -> None:
        """Meta-update φ from ``meta_loss`` (computed at :attr:`window_params`), then move the model to ``θ``."""
        theta, m = self.window_params, self._window[1]
        phi = list(self.memory.parameters())
        for p, g in zip(phi, torch.autograd.grad(meta_loss, phi), strict=True):
            p.grad = g
        self.meta_opt.step()
        self.meta_steps += 1
        self.last_meta_loss = float(meta_loss.detach())
        with torch.no_grad():
            for p, q in zip(self.params, theta, strict=True):
                p.copy_(q)
        self.m = m.detach()
        self._window = None

    def state_dict(self) -> dict[str, Any]:
        if self._window is not None:
            raise RuntimeError("a meta window is open; close it before saving (its graph cannot be saved)")
        out = super().state_dict()
        out["deep_memory"] = {"m": self.m, "v": self.v, "t": self.t, "memory": self.memory.state_dict(),
                              "meta_opt": self.meta_opt.state_dict(), "meta_steps": self.meta_steps,
                              "last_meta_loss": self.last_meta_loss}  # fmt: skip
        return out

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        dm = state.pop("deep_memory", None)
        if dm is None or dm["m"].numel() != self.m.numel():
            got = "no deep-memory state" if dm is None else f"{dm['m'].numel()} elements"
            raise CheckpointMismatchError(
                f"optimizer state does not fit the deep-memory optimizer ({got}, expected {self.m.numel()}); "
                "resume with the run's own model and optimizer, or start in a new out_dir"
            )
        super().load_state_dict(state)
        self.m, self.v = dm["m"].to(self.m.device), dm["v"].to(self.v.device)
        self.t, self.meta_steps, self.last_meta_loss = int(dm["t"]), int(dm["meta_steps"]), float(dm["last_meta_loss"])
        self.memory.load_state_dict(dm["memory"])
        self.meta_opt.load_state_dict(dm["meta_opt"])
