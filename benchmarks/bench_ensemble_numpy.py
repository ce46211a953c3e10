"""Benchmark: vectorised evaluate_grid vs a per-config loop (fuse_probs + sklearn metrics) on the same grid."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

# run as a plain script from a checkout without an installed package
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fer_core.calibrate.metrics import brier, ece, nll
from fer_core.ensemble import evaluate_grid, fuse_probs, simplex_grid
from fer_core.evaluate.metrics import classification_metrics


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="N=2,000 and a coarser grid")
    args = ap.parse_args()
    n, step = (2_000, 0.25) if args.quick else (7_000, 0.1)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, n)
    z = (rng.normal(size=(3, n, 7)) + 2.0 * np.eye(7)[y]).astype(np.float32)
    w = simplex_grid(3, step)
    temps = [0.5, 1.0, 2.0, 4.0]
    classification_metrics(y[:10], y[:10])  # sklearn is imported on first use: keep that out of the loop's time
    t0 = time.perf_counter()
    df = evaluate_grid(z, y, w, temps)
    t_vec = time.perf_counter() - t0
    t0 = time.perf_counter()
    for t in temps:
        for row in w:
            p = fuse_probs(z, row, t)
            classification_metrics(y, p.argmax(axis=1))
            ece(p, y), nll(p, y), brier(p, y)
    t_loop = time.perf_counter() - t0
    g = len(df)
    print(f"K=3 teachers, N={n}, {g} configs ({len(w)} weights x {len(temps)} T)")
    print(f"per-config loop (sklearn)  {t_loop:7.3f} s  ({t_loop / g * 1e3:.2f} ms/config)")
    print(
        f"evaluate_grid (vectorised) {t_vec:7.3f} s  ({t_vec / g * 1e3:.2f} ms/config)  speed-up {t_loop / t_vec:.1f}x"
    )


if __name__ == "__main__":
    main()
