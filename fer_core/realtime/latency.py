"""Constant-memory latency percentiles: a log-spaced histogram, so a runner left on for hours does not grow."""

from __future__ import annotations

import math

import numpy as np

_LO_MS, _HI_MS = 1e-3, 1e5
_BINS_PER_DECADE = 200  # bin edges 1.16% apart: a percentile is reported within ~0.6% of the true value


class LatencyHistogram:
    """Counts of millisecond values in log-spaced bins from 1 µs to 100 s (values outside are clamped).

    ``percentile(q)`` returns the geometric centre of the bin holding the q-th percentile, so it is within about
    0.6% of the exact (nearest-rank) value; ``max`` is exact.
    """

    def __init__(self) -> None:
        self._n_bins = int(round(math.log10(_HI_MS / _LO_MS) * _BINS_PER_DECADE))
        self.counts = np.zeros(self._n_bins, dtype=np.int64)
        self.n = 0
        self.max = 0.0

    def add(self, ms: float) -> None:
        """Record one value (milliseconds)."""
        v = min(max(ms, _LO_MS), _HI_MS)
        i = min(self._n_bins - 1, int(math.log10(v / _LO_MS) * _BINS_PER_DECADE))
        self.counts[i] += 1
        self.n += 1
        self.max = max(self.max, ms)

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0-100) in milliseconds; ``0.0`` when nothing was recorded."""
        if self.n == 0:
            return 0.0
        rank = max(1, math.ceil(q / 100.0 * self.n))
        i = int(np.searchsorted(np.cumsum(self.counts), rank))
        return _LO_MS * 10 ** ((i + 0.5) / _BINS_PER_DECADE)

    def summary(self) -> dict[str, float]:
        """``{"p50", "p99", "max"}`` in milliseconds."""
        return {"p50": self.percentile(50), "p99": self.percentile(99), "max": self.max}

    def reset(self) -> None:
        """Forget every value (e.g. at a new reporting interval)."""
        self.counts[:] = 0
        self.n = 0
        self.max = 0.0
