"""Ensemble fusion, weight grids, and the vectorised grid evaluation against a slow sklearn reference."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax as sp_softmax

from fer_core.calibrate.metrics import brier, ece, nll
from fer_core.ensemble import best_config, evaluate_grid, fuse_probs, ratio_grid, simplex_grid
from fer_core.errors import ConfigError, DataIntegrityError
from fer_core.evaluate.metrics import classification_metrics

C = 7


def test_fuse_probs_hand_case():
    z = np.log(np.array([[[1.0, 3.0] + [1e-12] * 5]]))  # teacher 0: p = (0.25, 0.75, ~0...)
    z = np.concatenate([z, np.log(np.array([[[1.0, 1.0] + [1e-12] * 5]]))])  # teacher 1: (0.5, 0.5, ...)
    p = fuse_probs(z, np.array([3.0, 1.0]), 1.0)  # weights normalise to (0.75, 0.25)
    np.testing.assert_allclose(p[0, :2], [0.75 * 0.25 + 0.25 * 0.5, 0.75 * 0.75 + 0.25 * 0.5], atol=1e-9)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)


def test_fuse_probs_temperature_and_bad_inputs():
    z = np.random.default_rng(0).normal(size=(2, 4, C))
    np.testing.assert_allclose(fuse_probs(z, [1, 0], 2.0), sp_softmax(z[0] / 2.0, axis=1))
    with pytest.raises(ConfigError, match=">= 0"):
        fuse_probs(z, [1, -1], 1.0)
    with pytest.raises(ConfigError, match="2 entries"):
        fuse_probs(z, [1, 1, 1], 1.0)
    with pytest.raises(ConfigError, match="temperature"):
        fuse_probs(z, [1, 1], 0.0)


def test_simplex_grid_counts_and_sums():
    g = simplex_grid(3, 0.1)
    assert g.shape == (math.comb(12, 2), 3)
    np.testing.assert_allclose(g.sum(axis=1), 1.0)
    assert len({tuple(r) for r in np.round(g, 9)}) == len(g) and (g >= 0).all()
    assert simplex_grid(1, 0.5).tolist() == [[1.0]]
    with pytest.raises(ConfigError, match="divide 1"):
        simplex_grid(2, 0.3)


def test_ratio_grid():
    r = ratio_grid(0.25)
    assert r.tolist() == [[0.0, 1.0], [0.25, 0.75], [0.5, 0.5], [0.75, 0.25], [1.0, 0.0]]
    assert ratio_grid(0.1, 0.2, 0.4).shape == (3, 2)


def _data(k=3, n=300, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, C, n)
    z = rng.normal(size=(k, n, C)) + 2.0 * np.eye(C)[y] * rng.uniform(0.2, 1.5, size=(k, 1, 1))
    return z.astype(np.float32), y


def test_grid_matches_slow_sklearn_reference():
    z, y = _data()
    w = simplex_grid(3, 0.25)
    temps = [0.5, 1.0, 3.0]
    df = evaluate_grid(z, y, w, temps, max_elements=5 * 300 * C)  # forces several blocks per temperature
    assert len(df) == len(w) * len(temps)
    for _, row in df.iterrows():
        probs = fuse_probs(z, row[["w_0", "w_1", "w_2"]].to_numpy(float), row["temperature"])
        ref = classification_metrics(y, probs.argmax(axis=1))
        for m in ("accuracy", "macro_f1", "minority_f1"):
            assert row[m] == pytest.approx(ref[m], abs=1e-9), m
        assert row["ece"] == pytest.approx(ece(probs, y, 15), abs=1e-5)
        assert row["nll"] == pytest.approx(nll(probs, y), rel=1e-5)
        assert row["brier"] == pytest.approx(brier(probs, y), rel=1e-5)


def test_grid_layout_is_temperature_major():
    z, y = _data(k=2, n=50)
    df = evaluate_grid(z, y, ratio_grid(0.5), [1.0, 2.0])
    assert df["temperature"].tolist() == [1.0] * 3 + [2.0] * 3
    assert df["w_0"].tolist() == [0.0, 0.5, 1.0] * 2
    assert df["config_id"].tolist() == list(range(6))


def test_grid_refuses_bad_input():
    z, y = _data(k=2, n=20)
    with pytest.raises(DataIntegrityError, match="labels outside"):
        evaluate_grid(z, np.full(20, 7), ratio_grid(0.5), [1.0])
    z[0, 0, 0] = np.nan
    with pytest.raises(DataIntegrityError, match="non-finite"):
        evaluate_grid(z, y, ratio_grid(0.5), [1.0])


def test_best_config_macro_f1_then_ece():
    import pandas as pd

    df = pd.DataFrame({"config_id": [0, 1, 2, 3], "macro_f1": [0.5, 0.7, 0.7, 0.6], "ece": [0.01, 0.09, 0.04, 0.0]})
    assert best_config(df)["config_id"] == 2
    assert best_config(df, tol=0.1)["config_id"] == 3
    with pytest.raises(ConfigError):
        best_config(df.iloc[:0])


def test_best_config_ranks_near_best_rows_by_nll():
    df = pd.DataFrame({"config_id": [0, 1, 2], "macro_f1": [0.600, 0.598, 0.590], "ece": [0.30, 0.05, 0.01],
                       "nll": [1.60, 1.10, 1.00]})  # fmt: skip
    assert best_config(df, tol=0.0, by="nll")["config_id"] == 0
    assert best_config(df, tol=0.005, by="nll")["config_id"] == 1  # 0.2 pp worse F1, far better NLL
    with pytest.raises(ConfigError, match="brier"):
        best_config(df, by="brier")
