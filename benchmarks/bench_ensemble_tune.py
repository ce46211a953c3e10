"""Ensemble sweep on Ray Tune (vectorised blocks per trial) vs pure numpy on the same grid, for several trial counts.

Grid: 11 weight ratios (step 0.1) x 8 temperatures x 3 teacher seeds, 2 teachers, 10,000 x 7 logits each: exactly
what ``tasks/_ensemble_trial.evaluate_block`` evaluates, split into ``ensemble.trials`` blocks. Prints Ray start, each
sweep's wall time, numpy's, the target (sweep <= Ray start + 2x numpy) and the load average.
Usage: python benchmarks/bench_ensemble_tune.py [--quick] [--trials 1,2,4] [--naive]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("FERFLOW_HOME", tempfile.mkdtemp(prefix="bench-ens-"))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# a fresh local Ray: without this, ray.init() joins whatever cluster another process left running on the machine
os.environ.setdefault("RAY_ADDRESS", "local")

from fer_core.ensemble.grid import evaluate_grid, ratio_grid  # noqa: E402

TEMPS = [0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5]


def make_seeds(n: int, seeds: int) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    out = {}
    for s in range(seeds):
        y = rng.integers(0, 7, n)
        out[s] = (np.stack([np.eye(7)[y] * 2.5 + rng.normal(0, sd, (n, 7)) for sd in (1.5, 2.0)]).astype(np.float32), y)
    return out


def naive_trial(config, data):
    from ray import tune

    lg, y = data[config["seed"]]
    df = evaluate_grid(lg, y, np.array([config["w"]]), [config["t"]])
    tune.report({"macro_f1": float(df["macro_f1"].iloc[0])})


def numpy_sweep(seeds, grid) -> float:
    import pandas as pd

    from fer_adapters.ensemble_trial import aggregate

    t0 = time.perf_counter()
    frames = []
    for s, (lg, y) in seeds.items():
        df = evaluate_grid(lg, y, grid, TEMPS)
        df["seed"] = s
        frames.append(df)
    aggregate(pd.concat(frames, ignore_index=True))
    return time.perf_counter() - t0


def tune_sweep(seeds, grid, trials: int) -> tuple[float, int]:
    """Wall time of one Tune sweep with the grid split into ``trials`` blocks, and the rows it returned."""
    from ray import tune

    from fer_adapters.ensemble_trial import evaluate_block
    from fer_adapters.sweeps import run_sweep

    parts = [b.tolist() for b in np.array_split(grid, min(trials, len(grid))) if len(b)]
    t0 = time.perf_counter()
    results = run_sweep(
        tune.with_parameters(evaluate_block, data={"seeds": seeds, "temperatures": TEMPS}),
        {"weights": tune.grid_search(parts)},
        name=f"bench_ensemble_{trials}",
        metric="macro_f1",
        resources={"cpu": 1},
    )
    return time.perf_counter() - t0, sum(len(r["metrics"]["rows"]) for r in results)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="2,000 samples per seed")
    ap.add_argument("--trials", default="1,2,4", help="comma list of trial counts (ensemble.trials) to time")
    ap.add_argument("--naive", action="store_true", help="also one config per trial (slow: 264 trials)")
    args = ap.parse_args()
    n = 2_000 if args.quick else 10_000
    t0 = time.perf_counter()
    import fer_adapters.ensemble_trial  # noqa: F401  (ray.tune + the trial's own imports: what every trial worker loads)

    t_import = time.perf_counter() - t0
    seeds = make_seeds(n, 3)
    grid = ratio_grid(0.1)
    numpy_sweep(seeds, grid)  # warm imports and caches for the baseline
    t_numpy = min(numpy_sweep(seeds, grid) for _ in range(3))

    import ray
    from ray import tune

    from fer_adapters.ray_cluster import ensure_ray

    t0 = time.perf_counter()
    ensure_ray(num_cpus=os.cpu_count())
    t_ray_start = time.perf_counter() - t0
    budget = t_ray_start + 2 * t_numpy
    print(f"logits: 2 teachers x {n} x 7, 3 seeds; grid {len(grid)} weights x {len(TEMPS)} T x 3 seeds = "
          f"{len(grid) * len(TEMPS) * 3} rows; {os.cpu_count()} CPUs, load1 {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(f"numpy, same grid (best of 3) ............... {t_numpy:8.2f} s   1.00x")
    print(f"import of the trial module (+ ray.tune) .... {t_import:8.2f} s")
    print(f"Ray start (ray.init) ....................... {t_ray_start:8.2f} s")
    for trials in [int(x) for x in args.trials.split(",") if x]:
        for attempt in ("first", "again"):
            load = os.getloadavg()[0]
            t_sweep, rows = tune_sweep(seeds, grid, trials)
            verdict = "met" if t_sweep <= budget else "MISSED"
            print(f"Tune sweep, {trials} trial(s), {attempt:<5} ........ {t_sweep:8.2f} s   "
                  f"{t_sweep / t_numpy:6.1f}x numpy  ({rows} rows, load1 {load:.1f})  target <= Ray start + 2x numpy "
                  f"= {budget:.2f} s: {verdict}")  # fmt: skip
    if args.naive:
        from fer_adapters.sweeps import run_sweep

        t0 = time.perf_counter()
        run_sweep(
            tune.with_parameters(naive_trial, data=seeds),
            {"w": tune.grid_search(grid.tolist()), "t": tune.grid_search(TEMPS), "seed": tune.grid_search([0, 1, 2])},
            name="naive_ensemble",
            metric="macro_f1",
        )
        t_naive = time.perf_counter() - t0
        print(f"naive Tune, one config per trial ({len(grid) * len(TEMPS) * 3} trials) {t_naive:8.2f} s   "
              f"{t_naive / t_numpy:6.1f}x numpy")  # fmt: skip
    ray.shutdown()


if __name__ == "__main__":
    main()
