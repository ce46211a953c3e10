"""``train_nested``: student training with the deep-memory optimizer, memory-bounded meta-learning and smoke gates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fer_core.errors import ConfigError, GateFailedError
from fer_core.evaluate.metrics import classification_metrics
from fer_core.io import atomic_path, atomic_write_json
from fer_core.models.checkpoint import CheckpointMeta, save_checkpoint
from fer_core.nested.config import NestedConfig
from fer_core.nested.memory import memory_snapshot
from fer_core.nested.steps import NestedStepper, Step
from fer_core.sink import MetricsSink, NullSink
from fer_core.taxonomy import FER_CLASSES, MINORITY_CLASSES

CHECKPOINT_NAME = "nested_student.pt"
METRICS_NAME = "nested_metrics.json"


@dataclass(frozen=True)
class NestedResult:
    """What a Nested Learning run produced."""

    checkpoint_path: Path
    metrics_path: Path
    final_metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    inner_steps: int = 0
    meta_steps: int = 0
    peak_memory_mb: float = float("nan")


def _device(cfg: NestedConfig) -> torch.device:
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("NestedConfig.device='cuda' but no CUDA device is visible; use 'cpu' or 'auto'")
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.device)


def _plan_epoch(rows: np.ndarray, cfg: NestedConfig, rng: np.random.Generator) -> list[Step]:
    """Shuffle ``rows`` into inner steps of ``accum_steps`` micro-batches (a short last step is kept, not dropped)."""
    order = rng.permutation(rows)
    micro = [order[i : i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]
    return [micro[i : i + cfg.accum_steps] for i in range(0, len(micro), cfg.accum_steps)]


@torch.no_grad()
def evaluate_model(model: nn.Module, data, batch_size: int, device: torch.device) -> dict[str, float]:
    """Mean CE (``loss``), accuracy and macro-F1 of ``model`` on every row of ``data`` (eval mode)."""
    model.eval()
    losses, preds = [], []
    for i in range(0, len(data), batch_size):
        x, y = data.get_batch(np.arange(i, min(i + batch_size, len(data))), train=False)
        logits = model(x.to(device)).float()
        losses.append(F.cross_entropy(logits, y.to(device), reduction="sum").item())
        preds.append(logits.argmax(1).cpu().numpy())
    c = logits.shape[1]
    classes, minority = (FER_CLASSES, MINORITY_CLASSES) if c == len(FER_CLASSES) else (tuple(map(str, range(c))), ())
    out = classification_metrics(data.labels, np.concatenate(preds), classes=classes, minority=minority)
    out["loss"] = float(np.sum(losses) / len(data))
    return out


def _run_epoch(stepper: NestedStepper, steps: list[Step], epoch: int, sink: MetricsSink, peak: list[float]) -> float:
    cfg = stepper.cfg
    k, u = cfg.meta_every, cfg.unroll
    losses: list[float] = []
    i = 0
    while i < len(steps):
        before = stepper.inner_steps
        pos = before % k
        if pos < k - u:
            losses.append(stepper.plain_step(steps[i], epoch))
            i += 1
        else:
            n = min(k - pos, len(steps) - i)
            losses.extend(stepper.meta_window(steps[i : i + n], epoch))
            i += n
        if stepper.inner_steps // cfg.memory_log_every > before // cfg.memory_log_every:
            snap = memory_snapshot(stepper.device)
            snap["meta/loss"] = stepper.last_meta_loss
            peak.append(max(v for key, v in snap.items() if "peak" in key))
            sink.log_metrics(snap, step=stepper.inner_steps)
    return float(np.mean(losses))


def _check_gates(cfg: NestedConfig, epoch_done: int, val: dict[str, float]) -> None:
    g = cfg.gates
    if not g.enabled or epoch_done != min(g.epoch, cfg.epochs):
        return
    if not (val["loss"] <= g.max_val_loss and val["macro_f1"] >= g.min_macro_f1):
        raise GateFailedError(
            f"Nested Learning smoke gate failed after epoch {epoch_done}: val loss {val['loss']:.4f} "
            f"(max {g.max_val_loss}), macro-F1 {val['macro_f1']:.4f} (min {g.min_macro_f1}); nothing was written. "
            "Check the learning rates and data, or adjust NestedConfig.gates for this dataset"
        )


def train_nested(
    cfg: NestedConfig,
    model: nn.Module,
    train_data,
    val_data,
    criterion: Callable,
    out_dir: str | Path,
    sink: MetricsSink | None = None,
    checkpoint_meta: CheckpointMeta | None = None,
) -> NestedResult:
    """Train ``model`` with the deep-memory optimizer; write the checkpoint and metrics only if the gates pass.

    Args:
        cfg: run config.
        model: the student; its logits are ``[B, C]``.
        train_data: :class:`fer_core.data.dataset.ArrayDataset`-like; a ``meta_holdout`` share of its rows is held out
            for the meta-loss and not trained on.
        val_data: same protocol; evaluated after every epoch (never used for meta-learning).
        criterion: engine-protocol loss ``(logits [B, C], targets [B], idx [B] rows of train_data, epoch) -> dict``.
        out_dir: receives ``nested_student.pt`` (``weights_only``-loadable) and ``nested_metrics.json``.
        sink: metrics receiver (per-epoch metrics; memory and meta-loss every ``memory_log_every`` inner steps).
        checkpoint_meta: when given (a timm student), the checkpoint is written in the contract-3.3 format with
            ``metrics``/``epoch``/``config`` filled in and the memory in ``train_state``; otherwise a plain
            ``{"format": "ferflow.nested/1", "state_dict", "train_state"}`` dict (both readable by
            :func:`fer_core.models.checkpoint.read_checkpoint`).

    Returns:
        :class:`NestedResult`.

    Raises:
        ConfigError: too few training rows, CUDA requested but absent.
        GateFailedError: the smoke gate failed (nothing written).
    """
    sink = sink or NullSink()
    device = _device(cfg)
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    rows = rng.permutation(len(train_data))
    n_meta = max(1, int(round(len(rows) * cfg.meta_holdout)))
    if len(rows) - n_meta < 1:
        raise ConfigError(f"{len(rows)} training rows leave none for inner steps after holding out {n_meta}")
    meta_rows, inner_rows = np.sort(rows[:n_meta]), rows[n_meta:]
    model.to(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    stepper = NestedStepper(model, criterion, train_data, meta_rows, cfg, device, rng)
    sink.log_params({f"nested.{k}": v for k, v in cfg.model_dump(mode="json").items() if k != "gates"})
    history: list[dict[str, float]] = []
    peak: list[float] = []
    for epoch in range(cfg.epochs):
        model.train()
        train_loss = _run_epoch(stepper, _plan_epoch(inner_rows, cfg, rng), epoch, sink, peak)
        val = evaluate_model(model, val_data, cfg.batch_size, device)
        record = {"epoch": float(epoch + 1), "train/loss": train_loss, "meta/steps": float(stepper.meta_steps)}
        record.update({f"val/{k}": v for k, v in val.items()})
        history.append(record)
        sink.log_metrics(record, step=epoch + 1)
        _check_gates(cfg, epoch + 1, val)
    peak.append(max(v for key, v in memory_snapshot(device).items() if "peak" in key))
    out = Path(out_dir)
    ckpt, metrics_path = out / CHECKPOINT_NAME, out / METRICS_NAME
    train_state = {"memory_state": stepper.memory.state_dict(), "nested_config": cfg.model_dump(mode="json")}
    if checkpoint_meta is not None:
        meta = checkpoint_meta.model_copy(
            update={"metrics": history[-1], "epoch": cfg.epochs, "config": cfg.model_dump(mode="json")}
        )
        save_checkpoint(ckpt, model, meta, train_state)
    else:
        state = {"format": "ferflow.nested/1", "state_dict": model.state_dict(), "train_state": train_state}
        with atomic_path(ckpt) as tmp:
            torch.save(state, tmp)
    summary = {"history": history, "inner_steps": stepper.inner_steps, "meta_steps": stepper.meta_steps}
    atomic_write_json(metrics_path, summary | {"peak_memory_mb": max(peak)})
    return NestedResult(ckpt, metrics_path, history[-1], history, stepper.inner_steps, stepper.meta_steps, max(peak))
