"""Statistics: hand-checkable summaries, exact sign-flip p-values, bootstrap CIs, verdict lines."""

import math

import numpy as np
import pytest

from fer_core.errors import DataIntegrityError
from fer_core.evaluate.metrics import classification_metrics
from fer_core.evaluate.stats import (
    BootstrapCI,
    min_p_value,
    paired_bootstrap_ci,
    paired_metric_diffs,
    paired_permutation_test,
    seed_bootstrap_ci,
    summarize,
    verdict,
)


def test_summarize_hand_values():
    s = summarize([1.0, 2.0, 3.0, 4.0])
    assert (s.mean, s.n) == (2.5, 4) and s.std == pytest.approx(math.sqrt(5 / 3))
    assert str(s) == "2.5000 ± 1.2910 (n=4)"
    assert math.isnan(summarize([0.7]).std)
    with pytest.raises(DataIntegrityError):
        summarize([])


def test_exact_sign_flip_p_values():
    base = np.zeros(3)
    r3 = paired_permutation_test(base + [0.01, 0.02, 0.03], base)  # every flip lowers the mean: p = 2/8
    assert r3.exact and r3.p_value == pytest.approx(0.25) and r3.min_p == 0.25
    r6 = paired_permutation_test(np.arange(1, 7) / 100, np.zeros(6))
    assert r6.p_value == pytest.approx(2 / 64) and r6.statistic == pytest.approx(0.035)
    sym = paired_permutation_test([1.0, -1.0, 2.0, -2.0], [0.0] * 4)
    assert sym.p_value == pytest.approx(1.0)
    # one-sided with diffs (+3, +1, -1): flips giving mean >= 1 are (3,1,-1),(3,1,1),(3,-1,1) -> 3/8
    assert paired_permutation_test([3.0, 1.0, -1.0], [0.0] * 3, "greater").p_value == pytest.approx(3 / 8)
    assert min_p_value(5) == 0.0625 and min_p_value(5, "greater") == 1 / 32


def test_vectorised_bootstrap_diffs_match_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, 120)
    a = np.where(rng.random(120) < 0.7, y, rng.integers(0, 7, 120))
    b = np.where(rng.random(120) < 0.5, y, rng.integers(0, 7, 120))
    idx = rng.integers(0, 120, (4, 120))
    got = paired_metric_diffs(y, a, b, idx)
    for r in range(4):
        ref = (
            classification_metrics(y[idx[r]], a[idx[r]])["macro_f1"]
            - classification_metrics(y[idx[r]], b[idx[r]])["macro_f1"]
        )
        assert got[r] == pytest.approx(ref, abs=1e-12)


def test_paired_bootstrap_degenerate_cases():
    y = np.arange(70) % 7
    same = paired_bootstrap_ci(y, y, y, n_resamples=50)
    assert (same.estimate, same.low, same.high) == (0.0, 0.0, 0.0)
    perfect_vs_wrong = paired_bootstrap_ci(y, y, (y + 1) % 7, metric="accuracy", n_resamples=50)
    assert (perfect_vs_wrong.low, perfect_vs_wrong.high) == (1.0, 1.0)
    rng = np.random.default_rng(1)
    b = np.where(rng.random(70) < 0.6, y, (y + 1) % 7)
    ci = paired_bootstrap_ci(y, y, b, n_resamples=400, chunk=64)
    assert 0 < ci.low < ci.estimate < ci.high <= 1


def test_seed_bootstrap_constant_difference():
    ci = seed_bootstrap_ci([0.61, 0.62, 0.63], [0.60, 0.61, 0.62], n_resamples=999)
    assert ci.estimate == pytest.approx(0.01) and ci.low == pytest.approx(0.01) and ci.high == pytest.approx(0.01)


def test_verdict_lines():
    ci = BootstrapCI(0.012, 0.003, 0.021, 0.95, 2000)
    sig = paired_permutation_test(np.arange(1, 7) / 100, np.zeros(6))
    line = verdict("KD", "CE", ci, sig)
    assert (
        line
        == "KD vs CE: +1.20 pp macro-F1 (95% CI [+0.30, +2.10]), p = 0.0312 with 6 seeds: significant at alpha=0.05"
    )
    few = paired_permutation_test([0.62, 0.63, 0.64], [0.60, 0.61, 0.62])
    line3 = verdict("KD", "CE", ci, few)
    assert "not significant" in line3 and "cannot go below p = 0.25" in line3 and "needs >= 6 seeds" in line3
