"""Online distillation: teacher models score the very batch the student trains on (same flips and shifts)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from fer_core.distill.config import DistillConfig
from fer_core.distill.criterion import DistillCriterion
from fer_core.distill.strategies import STRATEGIES
from fer_core.errors import CheckpointMismatchError, ConfigError
from fer_core.losses.negl import NegLLoss
from fer_core.models.checkpoint import load_checkpoint


class OnlineDistillCriterion(DistillCriterion):
    """KD/DKD (+ NegL) whose teacher logits come from teacher models run on the student's augmented inputs.

    The engine passes ``inputs=`` the normalised micro-batch (see ``wants_inputs``). Teachers run in eval mode
    (re-pinned on every call, so nothing can leave them training) under ``torch.no_grad``, in fp32.

    Args:
        cfg: the distillation config (``mode="online"``).
        teachers: K teacher modules, in the order of ``cfg.teachers``; each maps ``x [B, C, H, W]`` to ``[B, C]``.
        strategy: a prepared strategy.
        negl: the complementary-label term, or None.
    """

    wants_inputs = True

    def __init__(self, cfg: DistillConfig, teachers: Sequence[nn.Module], strategy, negl: NegLLoss | None):
        super().__init__(cfg, torch.empty(0), strategy, negl)
        self.teachers = list(teachers)
        for t in self.teachers:
            t.requires_grad_(False)
            t.eval()

    @torch.no_grad()
    def score(self, inputs: Tensor) -> Tensor:
        """``[B, K, C]`` raw teacher logits of ``inputs``; teachers move to the inputs' device on first use."""
        out = []
        for t in self.teachers:
            t.eval()
            if (p := next(t.parameters(), None)) is not None and p.device != inputs.device:
                t.to(inputs.device)
            out.append(t(inputs).float())
        return torch.stack(out, dim=1)

    def __call__(
        self, logits: Tensor, targets: Tensor, idx: Tensor, epoch: int, inputs: Tensor | None = None
    ) -> dict[str, Tensor]:
        """As :class:`DistillCriterion`, with ``inputs`` ``[B, C, H, W]`` the student's (augmented) micro-batch.

        Raises:
            ConfigError: no ``inputs`` (a training loop that does not pass them cannot distil online).
        """
        if inputs is None:
            raise ConfigError("online distillation needs the batch inputs; this training loop does not pass inputs=, "
                              "use mode offline (precomputed teacher logits) with it")  # fmt: skip
        z = logits.float()
        return self.terms(z, self.score(inputs), targets, idx, epoch)


def make_online_distill_criterion(
    cfg: DistillConfig,
    teachers: Sequence[nn.Module],
    sample_ids: Sequence[str],
    class_f1: np.ndarray | None = None,
    confusion: np.ndarray | None = None,
    num_classes: int = 7,
) -> OnlineDistillCriterion:
    """Build the online criterion: same strategies, losses and NegL as :func:`make_distill_criterion`.

    Args:
        cfg: strategy, teachers, loss and NegL settings.
        teachers: K teacher modules in the order of ``cfg.teachers`` (e.g. from :func:`load_teachers`).
        sample_ids: the training rows' ids (id-keyed strategies such as ``split``).
        class_f1: ``[K, C]`` teachers' validation F1 per class (``four_way``).
        confusion: ``[C, C]`` teachers' confusion matrix (NegL ``mode="teacher"``).
        num_classes: C.

    Raises:
        ConfigError: ``cfg.mode`` is not online, ``len(teachers)`` differs from ``cfg.teachers``, an unknown
            strategy, bad strategy/NegL args.
    """
    if cfg.mode != "online":
        raise ConfigError(f"distill mode {cfg.mode!r} reads precomputed logits; build it with make_distill_criterion "
                          "or set mode: online")  # fmt: skip
    if len(teachers) != len(cfg.teachers):
        raise ConfigError(f"{len(teachers)} teacher models for {len(cfg.teachers)} configured teachers "
                          f"{list(cfg.teachers)}; pass one model per name, in that order")  # fmt: skip
    strategy = STRATEGIES.get(cfg.strategy)(
        list(cfg.teachers), cfg.resolved_weights(), cfg.resolved_temperatures(), class_f1=class_f1, fuse=cfg.fuse
    )
    strategy.prepare(sample_ids)
    negl = None if cfg.negl is None else NegLLoss.from_config(cfg.negl, num_classes, confusion)
    return OnlineDistillCriterion(cfg, teachers, strategy, negl)


def load_teachers(
    paths: Sequence[str | Path], img_size: int, in_chans: int, mean: Sequence[float], std: Sequence[float]
) -> list[nn.Module]:
    """Teacher checkpoints as eval-mode modules, checked to take the student's input (size, channels, normalisation).

    Raises:
        CheckpointMismatchError: a teacher trained on another input spec (its logits of the student's batch would
            be meaningless); the message names the file and both specs.
    """
    out = []
    for p in paths:
        model, meta = load_checkpoint(p)
        theirs = (meta.img_size, meta.in_chans, tuple(meta.mean), tuple(meta.std))
        ours = (img_size, in_chans, tuple(mean), tuple(std))
        if theirs != ours:
            raise CheckpointMismatchError(
                f"teacher {p} takes (img_size, in_chans, mean, std) = {theirs}, the student's batch is {ours}; "
                "online distillation feeds the student's batch to the teacher, so both must match (or use offline)"
            )
        out.append(model)
    return out
