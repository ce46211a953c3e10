"""One optimizer step over an effective batch: micro-batches, AMP, clipping, NaN guard and OOM back-off.

Each micro-batch's loss is weighted by its share of the effective batch, so the accumulated gradient equals the
full-batch mean whatever the split; an OOM back-off (halve the micro-batch, double accumulation) therefore leaves
the optimisation unchanged except for BatchNorm statistics.

A deferring runner (``defer=True``) never reads a value back during a step, so the host keeps queueing work for the
GPU: losses, gradient norms and the finiteness checks stay on the device until :func:`resolve_outputs` reads a run
of steps with one sync and raises for the first step that diverged, naming it as the immediate check would.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from fer_core.errors import FerError
from fer_core.train.config import TrainConfig
from fer_core.train.errors import TrainingDivergedError
from fer_core.train.protocols import Criterion

log = logging.getLogger(__name__)
FaultInjector = Callable[[int, int], None]
# Builds the optimizer from the model (already on the run's device) and the run config; the engine wraps it in its
# warm-up/cosine schedule and saves its state_dict() in last.pt, so all of its state must be in there.
OptimizerFactory = Callable[[nn.Module, TrainConfig], torch.optim.Optimizer]


def is_oom(err: BaseException) -> bool:
    """True for CUDA OOM errors (``torch.OutOfMemoryError`` or a RuntimeError saying "out of memory")."""
    return isinstance(err, torch.OutOfMemoryError) or (
        isinstance(err, RuntimeError) and "out of memory" in str(err).lower()
    )


@dataclass(frozen=True)
class PendingCheck:
    """A finiteness check not yet read back: a 0-d device tensor and the step it names if it is not finite."""

    value: torch.Tensor
    what: str
    gstep: int
    epoch: int
    ids: Sequence[str]


@dataclass
class StepOutput:
    """Result of one optimizer step: loss terms (batch means), pre-clip grad norm, per-sample CE ``[B]``.

    From a deferring runner, ``terms`` and ``grad_norm`` are 0-d device tensors and ``checks`` lists the finiteness
    checks still to make; :func:`resolve_outputs` turns them into floats.
    """

    terms: dict[str, float]
    grad_norm: float
    per_sample_ce: torch.Tensor
    checks: list[PendingCheck] = field(default_factory=list)


def resolve_outputs(outputs: Sequence[StepOutput]) -> list[StepOutput]:
    """Read the deferred values of ``outputs`` (in step order) with one device sync and run their checks in order.

    Returns:
        The outputs with float ``terms`` and ``grad_norm`` and no pending checks (outputs already resolved pass).

    Raises:
        TrainingDivergedError: the first non-finite loss or gradient norm, naming its step, epoch and sample ids.
    """
    tensors = [t for o in outputs for t in _deferred(o)]
    if not tensors:
        return [StepOutput(dict(o.terms), o.grad_norm, o.per_sample_ce) for o in outputs]
    it = iter(torch.stack([t.detach().double().reshape(()) for t in tensors]).tolist())
    out = []
    for o in outputs:
        for c in o.checks:
            if not math.isfinite(value := next(it)):
                raise TrainingDivergedError(f"{c.what} is {value}", c.gstep, c.epoch, c.ids)
        terms = {k: next(it) if isinstance(v, torch.Tensor) else v for k, v in o.terms.items()}
        norm = next(it) if isinstance(o.grad_norm, torch.Tensor) else o.grad_norm
        out.append(StepOutput(terms, norm, o.per_sample_ce))
    return out


def _deferred(o: StepOutput) -> list[torch.Tensor]:
    """The tensors :func:`resolve_outputs` reads for one output, in the order it consumes them."""
    terms = [v for v in o.terms.values() if isinstance(v, torch.Tensor)]
    norm = [o.grad_norm] if isinstance(o.grad_norm, torch.Tensor) else []
    return [c.value for c in o.checks] + terms + norm


@dataclass
class StepRunner:
    """Runs optimizer steps; ``micro_batch`` shrinks on OOM and stays shrunk for the rest of the run.

    ``defer``: leave losses, norms and finiteness checks on the device (:func:`resolve_outputs` reads them);
    ``channels_last``: feed NHWC inputs (the model should be converted too); ``compile_model``: run the forward
    through ``torch.compile`` (made at the first step).
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    criterion: Criterion
    device: torch.device
    micro_batch: int
    clip_grad_norm: float | None = None
    amp_dtype: torch.dtype | None = None
    scaler: torch.amp.GradScaler | None = None
    fault_injector: FaultInjector | None = None
    oom_events: list[dict[str, int]] = field(default_factory=list)
    defer: bool = False
    channels_last: bool = False
    compile_model: bool = False

    def step(
        self, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor, ids: Sequence[str], epoch: int, gstep: int
    ) -> StepOutput:
        """One optimizer step on ``x [B, C, H, W]``, ``y [B]``, ``idx [B]``; retried with a smaller micro-batch on OOM.

        Raises:
            TrainingDivergedError: non-finite loss or gradients.
            FerError: OOM even at micro-batch 1.
        """
        while True:
            try:
                return self._attempt(x, y, idx, ids, epoch, gstep)
            except Exception as e:
                if not is_oom(e):
                    raise
                self._back_off(len(y), epoch, gstep, e)

    def _back_off(self, batch: int, epoch: int, gstep: int, err: BaseException) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        if self.micro_batch <= 1:
            raise FerError(f"out of memory at global step {gstep} even with micro-batch 1: {err}") from err
        old = self.micro_batch
        self.micro_batch = max(1, old // 2)
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        event = {"step": gstep, "epoch": epoch, "old_micro_batch": old, "micro_batch": self.micro_batch,
                 "accum_steps": math.ceil(batch / self.micro_batch), "effective_batch": batch}  # fmt: skip
        self.oom_events.append(event)
        log.warning("OOM at step %d: micro-batch %d -> %d, accumulation %d, effective batch %d unchanged",
                    gstep, old, self.micro_batch, event["accum_steps"], batch)  # fmt: skip

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _forward(self, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        model = self._compiled() if self.compile_model else self.model
        with self._autocast():
            if getattr(self.model, "uses_labels", False):
                return model(xb, yb).float()
            return model(xb).float()

    def _compiled(self) -> Callable[..., torch.Tensor]:
        """``torch.compile`` of the model's forward, made once; parameters stay the model's (checkpoints unchanged)."""
        fn = self.__dict__.get("_compiled_forward")
        if fn is None:
            fn = self.__dict__["_compiled_forward"] = torch.compile(self.model)
        return fn

    def _attempt(
        self, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor, ids: Sequence[str], epoch: int, gstep: int
    ) -> StepOutput:
        self.optimizer.zero_grad(set_to_none=True)
        n = len(y)
        sums: dict[str, float] = {}
        per_sample, checks = [], []
        for start in range(0, n, self.micro_batch):
            sl = slice(start, start + self.micro_batch)
            if self.fault_injector is not None:
                self.fault_injector(gstep, self.micro_batch)
            xb = x[sl].to(self.device, non_blocking=True)
            yb, ib = y[sl].to(self.device, non_blocking=True), idx[sl].to(self.device, non_blocking=True)
            logits = self._forward(xb, yb)
            # an online-distillation criterion scores the same augmented micro-batch with its teachers
            wants = getattr(self.criterion, "wants_inputs", False)
            terms = self.criterion(logits, yb, ib, epoch, inputs=xb) if wants else self.criterion(logits, yb, ib, epoch)
            loss = terms["loss"]
            if self.defer:  # checked (and named) when resolve_outputs reads it
                checks.append(PendingCheck(loss.detach(), "loss", gstep, epoch, ids[sl]))
            elif not math.isfinite(value := float(loss.detach())):
                raise TrainingDivergedError(f"loss is {value}", gstep, epoch, ids[sl])
            w = len(yb) / n
            (self.scaler.scale(loss * w) if self.scaler is not None else loss * w).backward()
            for k, v in terms.items():
                # float64 on the device: the same IEEE sums as the host floats of an immediate read
                val = v.detach().double() if self.defer else float(v.detach())
                sums[k] = sums.get(k, 0.0) + val * w
            per_sample.append(F.cross_entropy(logits.detach(), yb, reduction="none"))
        grad_norm = self._apply(epoch, gstep, ids)
        if self.defer and self.scaler is None:
            checks.append(PendingCheck(grad_norm, "gradient norm", gstep, epoch, ids))
        return StepOutput(sums, grad_norm, torch.cat(per_sample), checks)

    def _clip(self, epoch: int, gstep: int, ids: Sequence[str]) -> float:
        """Unscale and clip the accumulated ``.grad`` in place; the pre-clip global norm.

        Raises:
            TrainingDivergedError: a non-finite norm without a GradScaler (with one, the scaler skips the step).
        """
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        params = [p for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
        max_norm = self.clip_grad_norm if self.clip_grad_norm is not None else float("inf")
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        if self.defer:
            return norm  # a 0-d tensor, checked by resolve_outputs
        grad_norm = float(norm)
        if self.scaler is None and not math.isfinite(grad_norm):
            raise TrainingDivergedError(f"gradient norm is {grad_norm}", gstep, epoch, ids)
        return grad_norm

    def _apply(self, epoch: int, gstep: int, ids: Sequence[str]) -> float:
        grad_norm = self._clip(epoch, gstep, ids)
        if self.scaler is not None:
            # fp16: an inf gradient means the scale was too high; the scaler skips the step and lowers it.
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        return grad_norm

    def end_epoch(self, epoch: int) -> dict[str, float]:
        """Called after an epoch's last step, before validation and checkpoints; returns extra epoch-row metrics.

        A plug-in runner finishes pending work here (e.g. a meta window), so that the checkpoint written at the end
        of the epoch holds its whole state and a resumed run continues exactly.
        """
        return {}


# Called like StepRunner (same positional and keyword arguments); returns a StepRunner or a subclass of it.
RunnerFactory = Callable[..., StepRunner]
