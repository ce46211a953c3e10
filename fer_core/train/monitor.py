"""Training diagnostics: gradient-norm statistics, per-class loss jump flags and smoke gates."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch

from fer_core.errors import GateFailedError
from fer_core.train.config import SmokeGates

log = logging.getLogger(__name__)


def norm_stats(norms: Sequence[float], prefix: str = "grad_norm") -> dict[str, float]:
    """``{prefix/mean, prefix/max, prefix/p95}`` of gradient norms (empty input gives no keys)."""
    if not norms:
        return {}
    a = np.asarray(norms, dtype=np.float64)
    p95 = float(np.percentile(a, 95))
    return {f"{prefix}/mean": float(a.mean()), f"{prefix}/max": float(a.max()), f"{prefix}/p95": p95}


class ClassLossTracker:
    """Per-class mean training loss per epoch, flagging a class whose loss exceeds ``factor`` x its running median.

    Args:
        classes: class names in index order.
        factor: jump threshold relative to the median of the class's previous epochs.
    """

    def __init__(self, classes: Sequence[str], factor: float = 2.0):
        self.classes = list(classes)
        self.factor = factor
        self.past: list[list[float]] = [[] for _ in self.classes]
        self._reset()

    def _reset(self) -> None:
        self._sum = torch.zeros(len(self.classes), dtype=torch.float64)
        self._cnt = torch.zeros(len(self.classes), dtype=torch.float64)

    def update(self, per_sample_loss: torch.Tensor, targets: torch.Tensor) -> None:
        """Accumulate per-sample losses ``[B]`` for targets ``[B]``."""
        t = targets.detach().cpu()
        self._sum.index_add_(0, t, per_sample_loss.detach().double().cpu())
        self._cnt.index_add_(0, t, torch.ones_like(t, dtype=torch.float64))

    def end_epoch(self, epoch: int) -> tuple[dict[str, float], list[dict[str, object]]]:
        """Close the epoch: ``({"train_loss/<cls>": mean}, flags)`` and reset the sums."""
        means, flags = {}, []
        for c, name in enumerate(self.classes):
            if self._cnt[c] == 0:
                continue
            v = float(self._sum[c] / self._cnt[c])
            means[f"train_loss/{name}"] = v
            if self.past[c]:
                med = float(np.median(self.past[c]))
                if v > self.factor * med:
                    flags.append({"epoch": epoch, "class": name, "loss": v, "running_median": med})
                    # Per epoch only at debug level: the run's flags are summarised once (log_flag_summary).
                    log.debug("epoch %d: class %s training loss %.4f > %.1fx running median %.4f",
                              epoch, name, v, self.factor, med)  # fmt: skip
            self.past[c].append(v)
        self._reset()
        return means, flags

    def state(self) -> list[list[float]]:
        return [list(p) for p in self.past]

    def load(self, past: list[list[float]]) -> None:
        self.past = [list(p) for p in past]


def summarize_flags(flags: Sequence[dict[str, object]], factor: float = 2.0) -> str | None:
    """One line naming every class whose training loss jumped and in which epochs, or None without flags.

    Args:
        flags: the run's flags ``{"epoch", "class", "loss", "running_median"}`` (:meth:`ClassLossTracker.end_epoch`).
        factor: the tracker's jump threshold, for the message.
    """
    if not flags:
        return None
    epochs: dict[str, list[int]] = {}
    for f in flags:
        epochs.setdefault(str(f["class"]), []).append(int(f["epoch"]))  # type: ignore[call-overload]
    parts = [f"{c} (epoch{'s' if len(e) > 1 else ''} {', '.join(map(str, sorted(e)))})" for c, e in epochs.items()]
    return (
        f"per-class training loss rose above {factor:g}x its running median {len(flags)} time(s): {'; '.join(parts)}. "
        "Expected while an ArcFace margin or the learning-rate warm-up ramps up; otherwise check lr and those classes' "
        "data (MLflow metrics flag/loss_jump/<class>)"
    )


def log_flag_summary(flags: Sequence[dict[str, object]], factor: float = 2.0) -> None:
    """Log :func:`summarize_flags` once (a warning), at the end of a run."""
    line = summarize_flags(flags, factor)
    if line:
        log.warning(line)


def check_grad_gate(gates: SmokeGates | None, grad_norm: float, step: int) -> None:
    """Fail fast when a step's gradient norm exceeds the smoke gate."""
    if gates is not None and grad_norm > gates.max_grad_norm:
        raise GateFailedError(
            f"smoke gate failed: gradient norm {grad_norm:.3g} > {gates.max_grad_norm} at step {step}; "
            "lower lr or enable clip_grad_norm"
        )


def check_epoch_gates(
    gates: SmokeGates, initial_loss: float, epoch_loss: float, macro_f1: float, val_loss: float = float("nan")
) -> None:
    """Judge the loss drop, macro-F1 and (when set) the validation loss at the gate epoch.

    Raises:
        GateFailedError: the loss fell by less than ``min_loss_drop``, macro-F1 is below ``min_macro_f1``, or the
            validation loss is above ``max_val_loss`` (or not finite).
    """
    drop = 1.0 - epoch_loss / initial_loss if initial_loss > 0 else 0.0
    problems = []
    if drop < gates.min_loss_drop:
        problems.append(f"train loss fell {drop:.1%} ({initial_loss:.4f} -> {epoch_loss:.4f}), "
                        f"need >= {gates.min_loss_drop:.0%}")  # fmt: skip
    if macro_f1 < gates.min_macro_f1:
        problems.append(f"val macro-F1 {macro_f1:.4f} < {gates.min_macro_f1}")
    if gates.max_val_loss is not None and not val_loss <= gates.max_val_loss:
        problems.append(f"val loss {val_loss:.4f} > {gates.max_val_loss}")
    if problems:
        raise GateFailedError("smoke gates failed: " + "; ".join(problems) + "; nothing was written")
