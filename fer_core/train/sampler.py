"""Class-balanced batch sampler: every batch holds at least ``min_per_class`` samples of every class.

Each batch takes ``min_per_class`` draws per class from a per-class shuffled cycle (a class is re-shuffled when
exhausted, so minority samples repeat across batches, never within one unless the class is smaller than
``min_per_class``: then it is drawn with replacement, documented and deliberate), and fills the rest from a shuffled
pass over the whole set. An epoch keeps the natural length ``ceil(N / batch_size)``, so the guaranteed minority draws
displace some majority rows: a given epoch sees most rows, a few epochs see all. Order is a pure function of
``(seed, epoch)``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from fer_core.errors import ConfigError, DataIntegrityError
from fer_core.taxonomy import FER_CLASSES


class ClassBalancedBatchSampler:
    """Yields ``ceil(N / batch_size)`` index batches ``[batch_size]`` per epoch.

    Args:
        labels: class index per row ``[N]``.
        batch_size: samples per batch; must be >= ``min_per_class * num_classes``.
        min_per_class: guaranteed samples of each class per batch.
        seed: base seed; call :meth:`set_epoch` to vary the order per epoch.
        num_classes: classes that must appear (default: len(FER_CLASSES)).

    Raises:
        ConfigError: the batch is too small for the guarantee.
        DataIntegrityError: a class has no sample at all.
    """

    def __init__(
        self,
        labels: Sequence[int] | np.ndarray,
        batch_size: int,
        min_per_class: int = 2,
        seed: int = 0,
        num_classes: int = len(FER_CLASSES),
    ):
        self.labels = np.asarray(labels, dtype=np.int64)
        need = min_per_class * num_classes
        if batch_size < need:
            raise ConfigError(
                f"batch_size {batch_size} < min_per_class {min_per_class} x {num_classes} classes = {need}; "
                "raise batch_size or lower min_per_class"
            )
        self.by_class = [np.flatnonzero(self.labels == c) for c in range(num_classes)]
        empty = [c for c, rows in enumerate(self.by_class) if rows.size == 0]
        if empty:
            raise DataIntegrityError(
                "class-balanced sampling needs every class present",
                [(f"class {c}", "no training sample") for c in empty],
            )
        self.batch_size, self.min_per_class, self.seed, self.epoch = batch_size, min_per_class, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-len(self.labels) // self.batch_size)

    def _class_draws(self, rng: np.random.Generator, n_batches: int) -> list[np.ndarray]:
        """Per class, ``[n_batches, min_per_class]`` rows drawn from shuffled cycles."""
        out = []
        k = self.min_per_class
        for rows in self.by_class:
            if rows.size < k:
                out.append(rng.choice(rows, size=(n_batches, k), replace=True))
                continue
            reps = -(-n_batches * k // rows.size)
            cycle = np.concatenate([rng.permutation(rows) for _ in range(reps)])
            # A draw straddling two permutations could repeat a row within a batch; shift such draws.
            draws = cycle[: n_batches * k].reshape(n_batches, k)
            out.append(np.stack([_dedupe(d, rows, rng) for d in draws]))
        return out

    def __iter__(self) -> Iterator[np.ndarray]:
        rng = np.random.default_rng([self.seed, self.epoch])
        n_batches = len(self)
        per_class = self._class_draws(rng, n_batches)
        fill = self.batch_size - self.min_per_class * len(self.by_class)
        pool = rng.permutation(len(self.labels))
        pool = np.resize(pool, max(fill * n_batches, 1))
        for b in range(n_batches):
            batch = np.concatenate([d[b] for d in per_class] + [pool[b * fill : (b + 1) * fill]])
            yield rng.permutation(batch)


def _dedupe(draw: np.ndarray, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if np.unique(draw).size == draw.size:
        return draw
    return rng.choice(rows, size=draw.size, replace=False)
