"""The distillation criterion in the engine's protocol: ``criterion(logits, targets, idx, epoch) -> dict``."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from fer_core.distill.config import DistillConfig
from fer_core.distill.strategies import STRATEGIES, TeacherStrategy
from fer_core.errors import ConfigError, DataIntegrityError
from fer_core.losses import DISTILL_LOSSES
from fer_core.losses.negl import NegLLoss

Criterion = Callable[[Tensor, Tensor, Tensor, int], dict[str, Tensor]]


def _check_teacher_logits(teacher_logits: np.ndarray, sample_ids: Sequence[str], teachers: Sequence[str]) -> None:
    if teacher_logits.ndim != 3:
        raise DataIntegrityError(f"teacher_logits must be [N, K, C], got shape {teacher_logits.shape}")
    n, k, _ = teacher_logits.shape
    if n != len(sample_ids):
        raise DataIntegrityError(
            f"teacher_logits has {n} rows but there are {len(sample_ids)} sample_ids; join the logits store to the "
            "dataset by sample_id before building the criterion"
        )
    if k != len(teachers):
        raise DataIntegrityError(f"teacher_logits has {k} teachers on axis 1, config names {len(teachers)}: {teachers}")
    bad = ~np.isfinite(teacher_logits).all(axis=2)
    if bad.any():
        rows, ks = np.nonzero(bad)
        raise DataIntegrityError(
            f"{int(bad.sum())} non-finite teacher logit rows; re-export those teachers' logits",
            [(f"row {r} (sample {sample_ids[r]})", f"teacher {teachers[t]}") for r, t in zip(rows, ks, strict=True)],
        )


class DistillCriterion:
    """KD/DKD (+ optional NegL) against strategy-made targets; teacher logits looked up by dataset row ``idx``.

    Args:
        cfg: the distillation config.
        teacher_logits: ``[N, K, C]`` float tensor aligned to the dataset rows.
        strategy: a prepared :class:`TeacherStrategy`.
        negl: the complementary-label term, or None.
    """

    def __init__(self, cfg: DistillConfig, teacher_logits: Tensor, strategy: TeacherStrategy, negl: NegLLoss | None):
        self.cfg = cfg
        self.teacher_logits = teacher_logits
        self.strategy = strategy
        self.negl = negl

    def _teachers_for(self, idx: Tensor, device: torch.device) -> Tensor:
        if self.teacher_logits.device != device:
            self.teacher_logits = self.teacher_logits.to(device)  # moved once: [N, K, C] is small
        i = idx.to(device=device, dtype=torch.long)
        n = self.teacher_logits.shape[0]
        if i.numel() and (int(i.min()) < 0 or int(i.max()) >= n):
            raise DataIntegrityError(f"idx out of range [0, {n - 1}]: min {int(i.min())} max {int(i.max())}")
        return self.teacher_logits.index_select(0, i)

    def __call__(self, logits: Tensor, targets: Tensor, idx: Tensor, epoch: int) -> dict[str, Tensor]:
        """Args: logits ``[B, C]``, targets ``[B]``, idx ``[B]`` row positions, epoch. Returns named scalar terms."""
        z = logits.float()  # loss maths in fp32 even under autocast
        return self.terms(z, self._teachers_for(idx, z.device), targets, idx, epoch)

    def terms(self, z: Tensor, teach: Tensor, targets: Tensor, idx: Tensor, epoch: int) -> dict[str, Tensor]:
        """The loss terms for student logits ``z [B, C]`` (fp32) and raw teacher logits ``teach [B, K, C]``."""
        if teach.shape[2] != z.shape[1]:
            raise DataIntegrityError(f"teacher logits have {teach.shape[2]} classes, the student {z.shape[1]}")
        t_logits, t_w = self.strategy(teach, targets, idx)
        lc = self.cfg.loss
        out = DISTILL_LOSSES.get(lc.kind).fn(lc, z, t_logits, targets, t_w, epoch)
        if self.negl is not None:
            n = self.negl(z, targets)
            out["negl"] = n["negl"]
            out["loss"] = out["loss"] + n["loss"]
        return out


def make_distill_criterion(
    cfg: DistillConfig,
    teacher_logits: np.ndarray,
    sample_ids: Sequence[str],
    class_f1: np.ndarray | None = None,
    confusion: np.ndarray | None = None,
) -> DistillCriterion:
    """Build the engine-protocol criterion ``(logits [B, C], targets [B], idx [B], epoch) -> {"loss", ...}``.

    Args:
        cfg: strategy, teachers, loss and NegL settings.
        teacher_logits: ``[N, K, C]`` precomputed teacher logits, ALREADY joined to the student's dataset rows by
            sample_id (row i belongs to ``sample_ids[i]``; teacher k is ``cfg.teachers[k]``).
        sample_ids: N ids of the dataset rows (used by id-keyed strategies such as ``split``).
        class_f1: ``[K, C]`` teachers' validation F1 per class (``four_way``).
        confusion: ``[C, C]`` teachers' confusion matrix, rows = true class (NegL ``mode="teacher"``).

    Returns:
        A :class:`DistillCriterion`.

    Raises:
        ConfigError: ``cfg.mode`` is not offline, an unknown strategy (lists valid names) or invalid strategy/NegL
            arguments.
        DataIntegrityError: logits of the wrong shape, misaligned with ``sample_ids``, or non-finite.
    """
    if cfg.mode != "offline":
        raise ConfigError(f"distill mode {cfg.mode!r} runs the teacher models; build it with "
                          "make_online_distill_criterion (this builder takes precomputed logits)")  # fmt: skip
    arr = np.asarray(teacher_logits)
    _check_teacher_logits(arr, sample_ids, cfg.teachers)
    cls = STRATEGIES.get(cfg.strategy)
    strategy = cls(
        list(cfg.teachers), cfg.resolved_weights(), cfg.resolved_temperatures(), class_f1=class_f1, fuse=cfg.fuse
    )
    strategy.prepare(sample_ids)
    negl = None if cfg.negl is None else NegLLoss.from_config(cfg.negl, arr.shape[2], confusion)
    return DistillCriterion(cfg, torch.as_tensor(arr, dtype=torch.float32), strategy, negl)
