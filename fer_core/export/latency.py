"""Wall-clock latency of a callable: warm-up, then per-call timings summarised as median / p95 / mean."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def time_calls(fn: Callable[[], object], runs: int = 200, warmup: int = 20) -> dict[str, float]:
    """Call ``fn`` ``warmup`` times untimed, then ``runs`` times timed one by one.

    Returns:
        ``median_ms``, ``p95_ms``, ``mean_ms`` and ``runs``.
    """
    for _ in range(warmup):
        fn()
    t = np.empty(runs)
    for i in range(runs):
        t0 = time.perf_counter()
        fn()
        t[i] = time.perf_counter() - t0
    t *= 1000.0
    return {"median_ms": float(np.median(t)), "p95_ms": float(np.percentile(t, 95)), "mean_ms": float(t.mean()),
            "runs": float(runs)}  # fmt: skip
