"""Split strategy: each sample is distilled from one teacher, chosen by a hash of its sample_id."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from fer_core.distill.strategies._base import STRATEGIES, TeacherStrategy, ones_like_batch
from fer_core.errors import ConfigError


def hash_unit(sample_id: str) -> float:
    """Deterministic ``u ∈ [0, 1)`` from the first 8 hex digits of ``sha256(sample_id)``."""
    return int(hashlib.sha256(sample_id.encode("utf-8")).hexdigest()[:8], 16) / 2.0**32


def assign_teachers(sample_ids: Sequence[str], weights: np.ndarray) -> np.ndarray:
    """Teacher index per sample: ``k`` such that ``u(id)`` falls in the k-th slice of ``cumsum(weights)``.

    Args:
        sample_ids: N ids.
        weights: K normalised weights (teacher k receives about a ``w_k`` share of the samples).

    Returns:
        ``[N]`` int64; stable across runs, machines and row orders.
    """
    u = np.fromiter((hash_unit(s) for s in sample_ids), dtype=np.float64, count=len(sample_ids))
    edges = np.cumsum(weights)[:-1]
    return np.searchsorted(edges, u, side="right").astype(np.int64)


@STRATEGIES.register("split")
class HashSplit(TeacherStrategy):
    """Sample ``i`` uses teacher ``assign_teachers(sample_ids, weights)[i]`` only."""

    min_teachers = 2

    def prepare(self, sample_ids: Sequence[str]) -> None:
        self.assignment = torch.from_numpy(assign_teachers(sample_ids, self.weights.double().numpy()))

    def mix(self, calibrated: Tensor, targets: Tensor, idx: Tensor) -> tuple[Tensor, Tensor]:
        if not hasattr(self, "assignment"):
            raise ConfigError("HashSplit.prepare(sample_ids) must be called before use (make_distill_criterion does)")
        k = self.assignment.index_select(0, idx.detach().cpu().long()).to(calibrated.device)
        chosen = calibrated.gather(1, k.view(-1, 1, 1).expand(-1, 1, calibrated.shape[2]))
        return chosen, ones_like_batch(calibrated.shape[0], calibrated.device)
