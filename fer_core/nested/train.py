"""``train_nested``: a Nested Learning student trained by the engine with the deep-memory optimizer plugged in."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from fer_core.errors import ConfigError
from fer_core.nested.config import NestedConfig
from fer_core.nested.memory import MemoryMLP
from fer_core.nested.optimizer import DeepMemoryOptimizer
from fer_core.nested.steps import MetaSource, NestedStepRunner
from fer_core.sink import MetricsSink, NullSink
from fer_core.train.config import TrainConfig
from fer_core.train.engine import TrainResult, train
from fer_core.train.protocols import Criterion, TrainData
from fer_core.train.step import FaultInjector


class NestedResult(TrainResult):
    """The engine's :class:`~fer_core.train.engine.TrainResult` plus what Nested Learning adds.

    Attributes:
        peak_memory_mb: highest peak memory seen over the run (CUDA allocator peak on GPU, peak RSS on CPU).
        meta_steps: meta-updates of the memory.
        inner_steps: optimizer steps on the student.
    """

    peak_memory_mb: float
    meta_steps: int
    inner_steps: int

    @property
    def checkpoint_path(self) -> Path:
        """The final checkpoint (``last_checkpoint``); the name the pre-engine result used."""
        return self.last_checkpoint


class _Rows:
    """The training rows the engine steps on (the meta hold-out left out); ``augment=False`` turns augmentation off."""

    def __init__(self, data: TrainData, rows: np.ndarray, augment: bool):
        self.data, self.rows, self.augment = data, rows, augment
        self.labels = np.asarray(data.labels)[rows]
        self.sample_ids = [data.sample_ids[i] for i in rows]
        self.spec = getattr(data, "spec", None)

    def __len__(self) -> int:
        return len(self.rows)

    def get_batch(
        self, indices: np.ndarray, train: bool = False, rng: np.random.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        rows = self.rows[np.asarray(indices, dtype=np.int64)]
        return self.data.get_batch(rows, train=train and self.augment, rng=rng)


class _RowCriterion(nn.Module):
    """Maps the engine's row positions (in :class:`_Rows`) back to the full dataset's rows the criterion is joined to.

    A module, so the engine's ``.to(device)`` moves the row map and, when it is one, the wrapped criterion.
    """

    def __init__(self, criterion: Criterion, rows: np.ndarray):
        super().__init__()
        self.criterion = criterion
        self.register_buffer("rows", torch.as_tensor(rows, dtype=torch.long), persistent=False)

    def forward(self, logits: Tensor, targets: Tensor, idx: Tensor, epoch: int) -> dict[str, Tensor]:
        return self.criterion(logits, targets, self.rows[idx], epoch)


def split_meta_rows(n: int, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(meta rows, inner rows)``: a seeded ``share`` of ``n`` rows held out for the meta-loss, both sorted.

    Raises:
        ConfigError: no row would be left to train on.
    """
    rows = np.random.default_rng([seed, 1]).permutation(n)
    n_meta = max(1, int(round(n * share)))
    if n - n_meta < 2:
        raise ConfigError(f"{n} training rows leave {n - n_meta} to train on after holding out {n_meta} for the "
                          "meta-loss; lower meta_holdout or add data")  # fmt: skip
    return np.sort(rows[:n_meta]), np.sort(rows[n_meta:])


def _optimizer(ncfg: NestedConfig, model: nn.Module, cfg: TrainConfig) -> DeepMemoryOptimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    memory = MemoryMLP(2, ncfg.memory_hidden, ncfg.memory_layers).to(params[0].device)
    return DeepMemoryOptimizer(params, memory, ncfg, lr=cfg.lr, weight_decay=cfg.weight_decay)


def train_nested(
    ncfg: NestedConfig,
    train_cfg: TrainConfig,
    train_data: TrainData,
    val_data: TrainData,
    criterion: Criterion | None,
    out_dir: str | Path,
    sink: MetricsSink | None = None,
    *,
    model: nn.Module | None = None,
    fault_injector: FaultInjector | None = None,
    dataset_sha256: str = "",
    on_checkpoint: Any = None,
) -> NestedResult:
    """Train a student with the deep-memory optimizer through :func:`fer_core.train.train`.

    The engine does everything but the update: device, seeding, batches, validation, class names, smoke gates,
    contract-3.3 checkpoints (``out_dir/last.pt``, ``best/``) and resume from ``last.pt``. A ``meta_holdout`` share
    of the training rows is held out for the meta-loss and never stepped on.

    Args:
        ncfg: the Nested Learning config (its run fields, when set, override ``train_cfg``'s).
        train_cfg: the student's engine config (model, schedule, clipping, threads, determinism, ...).
        train_data: ArrayDataset-like training set.
        val_data: same protocol; validated every epoch by the engine (never used for meta-learning).
        criterion: engine-protocol loss ``(logits [B, C], targets [B], idx [B] rows of train_data, epoch) -> dict``;
            None: the engine's default from ``train_cfg.loss``.
        out_dir: the run folder.
        sink: metrics receiver (epoch rows; memory and meta-loss every ``memory_log_every`` inner steps).
        model: a prebuilt model instead of ``create_model(train_cfg.model)``.
        fault_injector: the engine's test hook, called before every micro-batch.
        dataset_sha256: recorded in the checkpoints.
        on_checkpoint: the engine's hook, called with ``last.pt`` each time it is written.

    Returns:
        :class:`NestedResult` (final = last epoch).

    Raises:
        ConfigError: invalid combined config, too few training rows, CUDA requested but absent, or ``out_dir`` holds
            a run of another config.
        GateFailedError: a smoke gate failed (nothing written).
    """
    sink = sink or NullSink()
    cfg = ncfg.train_config(train_cfg)
    meta_rows, inner_rows = split_meta_rows(len(train_data), ncfg.meta_holdout, cfg.seed)
    sink.log_params({f"nested.{k}": v for k, v in ncfg.model_dump(mode="json").items() if k != "gates"})
    runner = functools.partial(NestedStepRunner, nested=ncfg, sink=sink,
                               meta=MetaSource(train_data, meta_rows, ncfg.meta_batch_size, cfg.seed))  # fmt: skip
    res = train(
        cfg, _Rows(train_data, inner_rows, ncfg.augment), val_data, Path(out_dir), sink,
        criterion=None if criterion is None else _RowCriterion(criterion, inner_rows), model=model,
        fault_injector=fault_injector, dataset_sha256=dataset_sha256, on_checkpoint=on_checkpoint,
        optimizer_factory=functools.partial(_optimizer, ncfg), runner_factory=runner,
        extra_config={"nested": ncfg.model_dump(mode="json")},
    )  # fmt: skip
    return _result(res)


def _result(res: TrainResult) -> NestedResult:
    rows: Sequence[dict[str, float]] = res.history
    return NestedResult(
        **dict(res), peak_memory_mb=max(r["mem/peak_mb"] for r in rows),
        meta_steps=int(rows[-1]["meta/steps"]), inner_steps=int(rows[-1]["meta/inner_steps"]),
    )  # fmt: skip
