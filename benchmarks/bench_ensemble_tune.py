"""Ensemble sweep: the vectorised Ray Tune sweep vs pure numpy on the same grid vs naive one-config-per-trial Tune.

Grid (issue 3): 4 weight ratios x 8 temperatures x 3 seeds on 10,000 x 7 logits per teacher, 2 teachers.
Prints wall times and ratios measured in the same run. Usage: python benchmarks/bench_ensemble_tune.py [--quick]
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

from fer_core.ensemble.grid import evaluate_grid  # noqa: E402

RATIOS = np.array([[0.5, 0.5], [0.6, 0.4], [0.7, 0.3], [0.8, 0.2]])
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="2,000 samples and 2 temperatures for the naive sweep")
    args = ap.parse_args()
    n = 2_000 if args.quick else 10_000
    seeds = make_seeds(n, 3)

    t0 = time.perf_counter()
    for lg, y in seeds.values():
        evaluate_grid(lg, y, RATIOS, TEMPS)
    t_numpy = time.perf_counter() - t0

    import ray
    from ray import tune

    from tasks._ray import ensure_ray
    from tasks._tune import run_sweep
    from tasks.ensemble import sweep_table

    t0 = time.perf_counter()
    ensure_ray(num_cpus=2)
    t_ray_start = time.perf_counter() - t0

    t0 = time.perf_counter()
    table = sweep_table(seeds, step=0.1, temperatures=TEMPS, blocks=2)  # ratio grid 0..1 step 0.1 (superset of RATIOS)
    t_flow = time.perf_counter() - t0

    temps = TEMPS[:2] if args.quick else TEMPS
    t0 = time.perf_counter()
    run_sweep(
        tune.with_parameters(naive_trial, data=seeds),
        {"w": tune.grid_search(RATIOS.tolist()), "t": tune.grid_search(temps), "seed": tune.grid_search([0, 1, 2])},
        name="naive_ensemble",
        metric="macro_f1",
    )
    t_naive = time.perf_counter() - t0
    n_naive = len(RATIOS) * len(temps) * 3
    ray.shutdown()

    print(f"logits: 2 teachers x {n} x 7, 3 seeds; vectorised Tune evaluated {len(table)} (seed, weights, T) rows")
    print(f"numpy, 4 ratios x 8 T x 3 seeds ............ {t_numpy:8.2f} s   1.00x")
    print(f"Ray start (ray.init) ....................... {t_ray_start:8.2f} s")
    print(f"Ray Tune vectorised sweep (2 trials) ....... {t_flow:8.2f} s   {t_flow / t_numpy:6.1f}x numpy")
    print(f"naive Tune, one config per trial ({n_naive} trials) {t_naive:8.2f} s   {t_naive / t_numpy:6.1f}x numpy, "
          f"{t_naive / t_flow:.1f}x the vectorised sweep")
    budget = t_ray_start + 2 * t_numpy
    print(f"target: sweep + start <= Ray start + 2x numpy = {budget:.2f} s -> "
          f"{'met' if t_flow + t_ray_start <= budget else 'MISSED'} ({t_flow + t_ray_start:.2f} s)")


if __name__ == "__main__":
    main()
