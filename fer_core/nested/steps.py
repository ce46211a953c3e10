"""Inner steps and meta windows of Nested Learning: functional forwards, truncated unrolls, memory meta-updates."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call
from torch.utils.checkpoint import checkpoint

from fer_core.nested.config import NestedConfig
from fer_core.nested.memory import MemoryMLP
from fer_core.nested.optimizer import DeepMemoryOptimizer

Step = list[np.ndarray]  # the micro-batches (row positions) whose gradients one inner step accumulates


class NestedStepper:
    """Runs plain inner steps and meta windows on ``model`` with the deep-memory optimizer.

    Args:
        model: the student (already on ``device``).
        criterion: engine-protocol loss ``(logits, targets, idx, epoch) -> {"loss", ...}``.
        train_data: dataset with ``get_batch(indices, train, rng)``; the criterion's ``idx`` are its rows.
        meta_rows: held-out training rows the meta-loss (plain CE) is measured on.
        cfg: the run config.
        device: torch device.
        rng: numpy generator (augmentation and meta-batch draws).
    """

    def __init__(self, model: nn.Module, criterion: Callable, train_data, meta_rows: np.ndarray, cfg: NestedConfig,
                 device: torch.device, rng: np.random.Generator):  # fmt: skip
        self.model, self.criterion, self.data, self.cfg, self.device, self.rng = (
            model, criterion, train_data, cfg, device, rng,
        )  # fmt: skip
        self.meta_rows = meta_rows
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        self.names = [n for n, _ in named]
        self.params = [p for _, p in named]
        self.memory = MemoryMLP(2, cfg.memory_hidden, cfg.memory_layers).to(device)
        self.opt = DeepMemoryOptimizer([p.shape for p in self.params], self.memory, cfg, device)
        self.meta_opt = torch.optim.Adam(self.memory.parameters(), lr=cfg.meta_lr)
        self.inner_steps = 0
        self.meta_steps = 0
        self.last_meta_loss = float("nan")

    def _autocast(self):
        if self.cfg.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def forward(self, params: list[Tensor], x: Tensor, differentiable: bool) -> Tensor:
        """Model logits ``[B, C]`` at ``params`` (optionally activation-checkpointed when building meta graphs)."""

        def fn(inp: Tensor, *ps: Tensor) -> Tensor:
            return functional_call(self.model, dict(zip(self.names, ps, strict=True)), (inp,))

        with self._autocast():
            if differentiable and self.cfg.checkpoint_activations:
                return checkpoint(fn, x, *params, use_reentrant=False)
            return fn(x, *params)

    def _grads(self, params: list[Tensor], step: Step, epoch: int, create_graph: bool, differentiable: bool):
        total: list[Tensor] | None = None
        loss_sum = 0.0
        for rows in step:
            x, y = self.data.get_batch(rows, train=self.cfg.augment, rng=self.rng)
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            idx = torch.as_tensor(rows, dtype=torch.long, device=self.device)
            loss = self.criterion(self.forward(params, x, differentiable), y, idx, epoch)["loss"] / len(step)
            g = torch.autograd.grad(loss, params, create_graph=create_graph)
            total = list(g) if total is None else [a + b for a, b in zip(total, g, strict=True)]
            loss_sum += float(loss.detach())
        return total, loss_sum

    def plain_step(self, step: Step, epoch: int) -> float:
        """One inner step with no meta graph (the memory runs under ``no_grad``); returns the train loss."""
        grads, loss = self._grads(self.params, step, epoch, create_graph=False, differentiable=False)
        self.inner_steps += 1
        with torch.no_grad():
            new, self.opt.m = self.opt.step(self.params, grads, self.opt.m, self.inner_steps)
            for p, q in zip(self.params, new, strict=True):
                p.copy_(q)
        return loss

    def meta_window(self, steps: list[Step], epoch: int) -> list[float]:
        """Differentiable inner steps on ``steps`` (the unroll), then one meta-update of the memory φ.

        The first unrolled step's gradient does not depend on φ (θ is detached at the window start), so it is taken
        without ``create_graph``; later steps need second-order graphs (``create_graph=True``), which is what makes
        long unrolls memory-hungry. Truncation (``unroll=1``) keeps only the last step's graph.

        Returns:
            the train loss of each step.
        """
        theta = [p.detach().requires_grad_(True) for p in self.params]
        m = self.opt.m
        losses = []
        for j, step in enumerate(steps):
            grads, loss = self._grads(theta, step, epoch, create_graph=j > 0, differentiable=j > 0)
            self.inner_steps += 1
            theta, m = self.opt.step(theta, grads, m, self.inner_steps)
            losses.append(loss)
        rows = self.rng.choice(self.meta_rows, size=min(self.cfg.meta_batch_size, len(self.meta_rows)), replace=False)
        x, y = self.data.get_batch(np.sort(rows), train=False)
        meta_loss = F.cross_entropy(self.forward(theta, x.to(self.device), True).float(), y.to(self.device))
        phi = list(self.memory.parameters())
        for p, g in zip(phi, torch.autograd.grad(meta_loss, phi), strict=True):
            p.grad = g
        self.meta_opt.step()
        self.meta_steps += 1
        self.last_meta_loss = float(meta_loss.detach())
        with torch.no_grad():
            for p, q in zip(self.params, theta, strict=True):
                p.copy_(q)
        self.opt.m = m.detach()
        return losses
