"""The engine plug-in of Nested Learning: inner steps and memory-bounded meta windows as a StepRunner.

Inner step ``s`` (the engine's 0-based global step) is plain when ``s mod meta_every < meta_every − unroll``; the
others form a meta window: differentiable inner steps on ``θ`` (a detached copy of the parameters taken at the window
start), then one meta-update of the memory φ from a held-out loss at ``θ``. A window that an epoch ends early is
closed at the end of the epoch, so every checkpoint holds a closed window and a resumed run continues exactly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import functional_call
from torch.utils.checkpoint import checkpoint

from fer_core.errors import ConfigError
from fer_core.nested.config import NestedConfig
from fer_core.nested.memory import memory_snapshot
from fer_core.nested.optimizer import DeepMemoryOptimizer
from fer_core.sink import MetricsSink, NullSink
from fer_core.train.errors import TrainingDivergedError
from fer_core.train.protocols import TrainData
from fer_core.train.step import StepOutput, StepRunner

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MetaSource:
    """Where the meta-loss is measured: held-out rows of the full training data (never stepped on).

    Attributes:
        data: the full training dataset.
        rows: the held-out row positions in ``data``.
        batch_size: rows per meta-loss (at most ``len(rows)``).
        seed: meta batches are drawn from ``(seed, inner step)``, so a resumed run draws the same ones.
    """

    data: TrainData
    rows: np.ndarray
    batch_size: int
    seed: int

    def batch(self, t: int) -> tuple[Tensor, Tensor]:
        rng = np.random.default_rng([self.seed, t, 2])
        rows = rng.choice(self.rows, size=min(self.batch_size, len(self.rows)), replace=False)
        return self.data.get_batch(np.sort(rows), train=False)


@dataclass(kw_only=True)
class NestedStepRunner(StepRunner):
    """The engine's StepRunner with meta windows; needs a :class:`DeepMemoryOptimizer` as its optimizer.

    Plain steps are the engine's own (micro-batches, AMP, clipping, NaN guard, OOM back-off, fault injection, then
    ``optimizer.step()``). Window steps take functional forwards at ``θ``; from the second step of a window on they
    keep second-order graphs (``create_graph``), which is what makes long unrolls memory-hungry: ``unroll`` bounds the
    graph, ``checkpoint_activations`` trades recomputation for activation memory.

    Attributes:
        nested: the run's Nested Learning config.
        meta: the held-out meta-loss source.
        sink: receives memory snapshots and the meta-loss every ``nested.memory_log_every`` inner steps.
    """

    nested: NestedConfig
    meta: MetaSource
    sink: MetricsSink = field(default_factory=NullSink)
    peak_mb: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.optimizer, DeepMemoryOptimizer):
            raise ConfigError(f"NestedStepRunner needs a DeepMemoryOptimizer, got {type(self.optimizer).__name__}")
        if self.scaler is not None:
            # fp16 loss scaling does not carry through second-order meta graphs; bf16 has the range to need none.
            log.warning("Nested Learning: this GPU has no bf16, so AMP is off (fp16 loss scaling is not supported)")
            self.scaler, self.amp_dtype = None, None
        names = {id(p): n for n, p in self.model.named_parameters()}
        self.names = [names[id(p)] for p in self.optimizer.params]
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def forward_at(self, params: list[Tensor], x: Tensor, labels: Tensor | None, differentiable: bool) -> Tensor:
        """Float logits ``[B, C]`` of the model at ``params`` (activation-checkpointed when building meta graphs)."""
        with_labels = labels is not None and getattr(self.model, "uses_labels", False)

        def fn(inp: Tensor, *ps: Tensor) -> Tensor:
            args = (inp, labels) if with_labels else (inp,)
            return functional_call(self.model, dict(zip(self.names, ps, strict=True)), args)

        with self._autocast():
            if differentiable and self.nested.checkpoint_activations:
                return checkpoint(fn, x, *params, use_reentrant=False).float()
            return fn(x, *params).float()

    def step(self, x: Tensor, y: Tensor, idx: Tensor, ids: list[str], epoch: int, gstep: int) -> StepOutput:
        k, u = self.nested.meta_every, self.nested.unroll
        if not self.optimizer.in_window and gstep % k >= k - u:
            self.optimizer.open_window()
        out = super().step(x, y, idx, ids, epoch, gstep)
        if self.optimizer.in_window and gstep % k == k - 1:
            self._close_window()
        if self.optimizer.t % self.nested.memory_log_every == 0:
            self._log_memory()
        return out

    def _attempt(self, x: Tensor, y: Tensor, idx: Tensor, ids: list[str], epoch: int, gstep: int) -> StepOutput:
        if not self.optimizer.in_window:
            return super()._attempt(x, y, idx, ids, epoch, gstep)
        return self._window_attempt(x, y, idx, ids, epoch, gstep)

    def _window_attempt(self, x: Tensor, y: Tensor, idx: Tensor, ids: list[str], epoch: int, gstep: int) -> StepOutput:
        """A differentiable inner step at the window's ``θ`` (nothing changes before the update, so OOM can retry)."""
        theta = self.optimizer.window_params
        first = theta[0].grad_fn is None  # θ is still the detached copy: its gradient does not depend on φ
        n, sums, per_sample = len(y), {}, []
        grads: list[Tensor] | None = None
        for start in range(0, n, self.micro_batch):
            sl = slice(start, start + self.micro_batch)
            if self.fault_injector is not None:
                self.fault_injector(gstep, self.micro_batch)
            xb = x[sl].to(self.device, non_blocking=True)
            yb, ib = y[sl].to(self.device, non_blocking=True), idx[sl].to(self.device, non_blocking=True)
            logits = self.forward_at(theta, xb, yb, differentiable=not first)
            terms = self.criterion(logits, yb, ib, epoch)
            if not np.isfinite(value := float(terms["loss"].detach())):
                raise TrainingDivergedError(f"loss is {value}", gstep, epoch, ids[sl])
            w = len(yb) / n
            g = torch.autograd.grad(terms["loss"] * w, theta, create_graph=not first, allow_unused=True)
            g = [torch.zeros_like(p) if gi is None else gi for gi, p in zip(g, theta, strict=True)]
            grads = g if grads is None else [a + b for a, b in zip(grads, g, strict=True)]
            for key, v in terms.items():
                sums[key] = sums.get(key, 0.0) + float(v.detach()) * w
            per_sample.append(F.cross_entropy(logits.detach(), yb, reduction="none"))
        norm = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.detach()) for g in grads])))
        if not np.isfinite(norm):
            raise TrainingDivergedError(f"gradient norm is {norm}", gstep, epoch, ids)
        if self.clip_grad_norm is not None and (coef := self.clip_grad_norm / (norm + 1e-6)) < 1.0:
            grads = [g * coef for g in grads]  # the engine's clipping rule, kept differentiable
        self.optimizer.step(grads=grads)
        self.scheduler.step()
        return StepOutput(sums, norm, torch.cat(per_sample))

    def _close_window(self) -> None:
        x, y = self.meta.batch(self.optimizer.t)
        x, y = x.to(self.device), y.to(self.device)
        logits = self.forward_at(self.optimizer.window_params, x, None, differentiable=True)
        self.optimizer.close_window(F.cross_entropy(logits, y))

    def _log_memory(self) -> dict[str, float]:
        snap = memory_snapshot(self.device)
        self.peak_mb = max(self.peak_mb, max(v for key, v in snap.items() if "peak" in key))
        self.sink.log_metrics(snap | {"meta/loss": self.optimizer.last_meta_loss}, step=self.optimizer.t)
        return snap

    def end_epoch(self, epoch: int) -> dict[str, float]:
        """Close a window the epoch cut short; the epoch row gets meta counts, the last meta-loss and peak memory."""
        if self.optimizer.in_window:
            self._close_window()
        self._log_memory()
        opt = self.optimizer
        return {"meta/steps": float(opt.meta_steps), "meta/inner_steps": float(opt.t),
                "meta/loss": opt.last_meta_loss, "mem/peak_mb": self.peak_mb}  # fmt: skip
