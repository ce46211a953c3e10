"""Benchmark: temperature fitting on 100,000 x 7 logits vs one NLL evaluation and a naive grid search over T."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

# run as a plain script from a checkout without an installed package
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from scipy.special import softmax

from fer_core.calibrate.temperature import fit_per_class_temperature, fit_temperature, nll_at


def _timed(fn, repeat: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="10,000 rows instead of 100,000")
    args = ap.parse_args()
    n = 10_000 if args.quick else 100_000
    rng = np.random.default_rng(0)
    z = rng.normal(size=(n, 7)) * 2.0
    y = (softmax(z, axis=1).cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    z = z * 1.7  # known true temperature 1.7

    t_nll, _ = _timed(lambda: nll_at(z, y, 1.0))
    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 200))
    t_grid, best_grid = _timed(lambda: grid[np.argmin([nll_at(z, y, t) for t in grid])], repeat=1)
    t_fit, fit = _timed(lambda: fit_temperature(z, y))
    t_pc, pc = _timed(lambda: fit_per_class_temperature(z, y, fit.temperature), repeat=1)

    print(f"logits {n} x 7, true T = 1.7")
    print(f"one NLL evaluation           {t_nll * 1e3:8.1f} ms   (baseline unit)")
    print(f"naive grid search (200 T)    {t_grid * 1e3:8.1f} ms   = {t_grid / t_nll:6.1f} x NLL   T={best_grid:.4f}")
    print(f"fit_temperature (Brent)      {t_fit * 1e3:8.1f} ms   = {t_fit / t_nll:6.1f} x NLL   T={fit.temperature:.4f}"
          f"  ({fit.n_evals} evals; {t_grid / t_fit:.1f}x faster than the grid)")  # fmt: skip
    print(f"fit_per_class_temperature    {t_pc * 1e3:8.1f} ms   = {t_pc / t_nll:6.1f} x NLL   "
          f"T_c in [{min(pc.temperatures):.3f}, {max(pc.temperatures):.3f}]")  # fmt: skip
    print(f"target < 2 s for the global fit: {'met' if t_fit < 2.0 else 'NOT met'}")


if __name__ == "__main__":
    main()
