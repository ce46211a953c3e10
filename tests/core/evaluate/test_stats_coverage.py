"""Seed confidence intervals: the t-interval covers at n = 5; the percentile bootstrap over 5 seeds undercovers."""

import numpy as np
import pytest

from fer_core.errors import DataIntegrityError
from fer_core.evaluate.stats import mean_t_ci, seed_bootstrap_ci, seed_t_ci

REPS, N, TRUE = 2000, 5, 0.02


def _draws(seed: int) -> np.ndarray:
    """``REPS`` experiments of ``N`` per-seed paired differences ~ Normal(TRUE, 0.01)."""
    return np.random.default_rng(seed).normal(TRUE, 0.01, (REPS, N))


def test_t_interval_covers_at_five_seeds():
    d = _draws(0)
    hits = [ci.low <= TRUE <= ci.high for ci in (seed_t_ci(x, np.zeros(N)) for x in d)]
    # binomial sd of the coverage over 2000 reps is 0.005: +-0.015 is a 3-sd tolerance
    assert np.mean(hits) == pytest.approx(0.95, abs=0.015)


def test_percentile_bootstrap_undercovers_at_five_seeds():
    d = _draws(1)[:400]  # the bootstrap is ~50x slower per rep; 400 reps still separate 0.80 from 0.95 clearly
    hits = [ci.low <= TRUE <= ci.high for ci in (seed_bootstrap_ci(x, np.zeros(N), n_resamples=999) for x in d)]
    assert np.mean(hits) < 0.90  # ~0.85 measured over 1000 reps (see fer_core.evaluate.stats)


def test_t_interval_hand_values():
    # values 1..5: mean 3, s = sqrt(2.5), t_{4, 0.975} = 2.7764451
    ci = mean_t_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    half = 2.7764451 * np.sqrt(2.5) / np.sqrt(5)
    assert (ci.estimate, ci.n, ci.method) == (3.0, 5, "Student t")
    assert ci.low == pytest.approx(3 - half, abs=1e-6) and ci.high == pytest.approx(3 + half, abs=1e-6)
    paired = seed_t_ci([0.6, 0.7, 0.8], [0.5, 0.6, 0.6])  # differences 0.1, 0.1, 0.2
    assert paired.estimate == pytest.approx(0.4 / 3) and paired.low < paired.estimate < paired.high
    with pytest.raises(DataIntegrityError):
        mean_t_ci([0.5])
