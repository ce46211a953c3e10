"""Negative learning with complementary labels (Kim et al., ICCV 2019, "NLNL"), uniform or teacher-guided."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from fer_core.config import FrozenModel, validate_config
from fer_core.errors import ConfigError, DataIntegrityError
from fer_core.losses._registry import LOSSES


class NegLConfig(FrozenModel):
    """Complementary-label term added with ``weight``; ``mode`` picks how the wrong label ȳ is drawn."""

    kind: Literal["negl"] = "negl"
    weight: float = Field(0.1, ge=0.0)
    mode: Literal["uniform", "teacher"] = "uniform"
    seed: int = 0


def negl_loss(logits: Tensor, complementary: Tensor) -> Tensor:
    """Kim et al. ICCV 2019 "NLNL: Negative Learning for Noisy Labels": mean_b −log(1 − p_b[ȳ_b]).

    ``log(1 − p_ȳ)`` is computed as ``logsumexp(z without ȳ) − logsumexp(z)``: exact, and finite with finite
    gradients even when ``p_ȳ`` rounds to 1 (where ``log1p(−p)`` would need clamping).

    Args:
        logits: ``[B, C]``.
        complementary: ``[B]`` int64 labels the samples are NOT.

    Returns:
        Scalar mean loss.
    """
    c = logits.shape[-1]
    z = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits  # half would lose log(1-p)
    keep = ~F.one_hot(complementary, c).to(torch.bool)
    others = z.masked_select(keep).view(-1, c - 1)
    log_not = torch.logsumexp(others, dim=-1) - torch.logsumexp(z, dim=-1)
    return -log_not.mean()


def complementary_probs(num_classes: int, confusion: np.ndarray | None = None) -> Tensor:
    """Row-stochastic sampling matrix ``[C, C]`` for complementary labels (row = true class, zero diagonal).

    Uniform mode (``confusion`` None): ``1/(C−1)`` off the diagonal. Teacher mode: row c is the off-diagonal part of
    the teachers' confusion matrix (rows = true class), normalised, so ȳ favours the classes c is most often mistaken
    for; a row with no off-diagonal mass (a class the teachers never confuse) falls back to uniform.

    Args:
        num_classes: C ≥ 2.
        confusion: ``[C, C]`` non-negative counts or rates, or None.

    Raises:
        ConfigError: fewer than 2 classes.
        DataIntegrityError: confusion of the wrong shape, negative or non-finite.
    """
    if num_classes < 2:
        raise ConfigError(f"complementary labels need at least 2 classes, got {num_classes}")
    off = 1.0 - np.eye(num_classes)
    uniform = off / (num_classes - 1)
    if confusion is None:
        return torch.as_tensor(uniform, dtype=torch.float64)
    m = np.asarray(confusion, dtype=np.float64)
    if m.shape != (num_classes, num_classes):
        raise DataIntegrityError(f"confusion must be [{num_classes}, {num_classes}] (rows = true class), got {m.shape}")
    rows, cols = np.nonzero(~np.isfinite(m) | (m < 0))
    bad = [(f"confusion[{i}, {j}]", f"value {m[i, j]}") for i, j in zip(rows, cols, strict=True)]
    if bad:
        raise DataIntegrityError("confusion matrix has negative or non-finite entries; pass counts or rates", bad)
    m = m * off
    sums = m.sum(1, keepdims=True)
    rows = np.where(sums > 0, m / np.where(sums > 0, sums, 1.0), uniform)
    return torch.as_tensor(rows, dtype=torch.float64)


def sample_complementary(targets: Tensor, probs: Tensor, generator: torch.Generator) -> Tensor:
    """Draw one complementary label per sample from row ``targets[b]`` of ``probs`` (deterministic per generator).

    Args:
        targets: ``[B]`` int64 true labels.
        probs: ``[C, C]`` from :func:`complementary_probs`.
        generator: CPU torch generator (the draw sequence is fixed by its seed).

    Returns:
        ``[B]`` int64 on the device of ``targets``, never equal to the true label.
    """
    rows = probs.index_select(0, targets.detach().cpu())
    return torch.multinomial(rows, 1, generator=generator).squeeze(1).to(targets.device)


@LOSSES.register("negl")
class NegLLoss(nn.Module):
    """Complementary-label loss that draws its own ȳ each call.

    Args:
        num_classes: C.
        weight: multiplier applied in ``loss`` (the raw term is ``negl``).
        mode: ``"uniform"`` or ``"teacher"`` (needs ``confusion``).
        confusion: ``[C, C]`` teachers' confusion matrix (rows = true class), for teacher mode.
        seed: seed of the sampling generator.

    Raises:
        ConfigError: teacher mode without a confusion matrix, or an invalid weight/mode.
    """

    def __init__(
        self,
        num_classes: int,
        weight: float = 0.1,
        mode: str = "uniform",
        confusion: np.ndarray | None = None,
        seed: int = 0,
    ):
        super().__init__()
        self.cfg = validate_config({"weight": weight, "mode": mode, "seed": seed}, NegLConfig, where="NegLLoss")
        if self.cfg.mode == "teacher" and confusion is None:
            raise ConfigError("NegL mode 'teacher' needs the teachers' confusion matrix; pass confusion= or 'uniform'")
        self.probs = complementary_probs(num_classes, confusion if self.cfg.mode == "teacher" else None)
        self.generator = torch.Generator().manual_seed(self.cfg.seed)

    @classmethod
    def from_config(cls, cfg: NegLConfig, num_classes: int, confusion: np.ndarray | None = None) -> NegLLoss:
        return cls(num_classes, cfg.weight, cfg.mode, confusion, cfg.seed)

    def forward(self, logits: Tensor, targets: Tensor) -> dict[str, Tensor]:
        comp = sample_complementary(targets, self.probs, self.generator)
        term = negl_loss(logits, comp)
        return {"loss": self.cfg.weight * term, "negl": term}
