"""Probability metrics: hand-computed ECE/MCE/NLL/Brier, edge bins, and a cross-check against torchmetrics."""

import numpy as np
import pytest
import torch
from torchmetrics.classification import MulticlassCalibrationError

from fer_core.calibrate.metrics import (
    batched_top_label_metrics,
    brier,
    classwise_ece,
    ece,
    mce,
    nll,
    quantile_bin_index,
    reliability_bins,
    uniform_bin_index,
)
from fer_core.errors import DataIntegrityError


def test_ece_mce_hand_case():
    # bin [0.6, 0.7): two samples at 0.65, one right -> |0.5 - 0.65| ; bin [0.9, 1.0]: one at 0.95, right -> 0.05
    probs = np.array([[0.65, 0.35], [0.65, 0.35], [0.05, 0.95]])
    y = np.array([0, 1, 1])
    assert ece(probs, y, 10) == pytest.approx((2 * 0.15 + 1 * 0.05) / 3)
    assert mce(probs, y, 10) == pytest.approx(0.15)


def test_confidence_one_falls_in_last_bin():
    assert uniform_bin_index(np.array([0.0, 0.0999, 0.1, 0.95, 1.0]), 10).tolist() == [0, 0, 1, 9, 9]
    b = reliability_bins(np.array([[1.0, 0.0], [0.92, 0.08]]), np.array([0, 1]), 10)
    assert b.count[-1] == 2 and b.count[:-1].sum() == 0
    assert ece(np.array([[1.0, 0.0]]), np.array([0]), 15) == 0.0


def test_quantile_bins_equal_mass_and_adaptive_ece():
    idx = quantile_bin_index(np.array([0.9, 0.1, 0.5, 0.3, 0.7, 0.2]), 3)
    assert idx.tolist() == [2, 0, 1, 1, 2, 0]
    probs = np.array([[0.6, 0.4], [0.7, 0.3], [0.9, 0.1], [0.8, 0.2]])
    y = np.array([0, 1, 0, 0])  # bins {0.6, 0.7} acc 0.5 conf 0.65 ; {0.8, 0.9} acc 1 conf 0.85
    assert ece(probs, y, 2, "quantile") == pytest.approx(0.5 * 0.15 + 0.5 * 0.15)


def test_nll_brier_classwise_hand_values():
    probs = np.array([[0.5, 0.25, 0.25], [0.2, 0.8, 0.0]])
    y = np.array([0, 1])
    assert nll(probs, y) == pytest.approx(-(np.log(0.5) + np.log(0.8)) / 2)
    assert brier(probs, y) == pytest.approx(((0.25 + 0.0625 + 0.0625) + (0.04 + 0.04 + 0.0)) / 2)
    mean, per = classwise_ece(np.array([[0.7, 0.3], [0.7, 0.3]]), np.array([0, 0]), 10)
    np.testing.assert_allclose(per, [0.3, 0.3])
    assert mean == pytest.approx(0.3)


@pytest.mark.parametrize("n_bins", [10, 15])
def test_ece_matches_torchmetrics(n_bins):
    rng = np.random.default_rng(n_bins)
    z = rng.normal(size=(2000, 7)) * rng.uniform(0.5, 3.0)
    probs = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    y = rng.integers(0, 7, 2000)
    for norm, ours in (("l1", ece(probs, y, n_bins)), ("max", mce(probs, y, n_bins))):
        ref = MulticlassCalibrationError(num_classes=7, n_bins=n_bins, norm=norm)(torch.tensor(probs), torch.tensor(y))
        assert ours == pytest.approx(float(ref), abs=1e-6)


def test_batched_equals_single():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(4, 100, 7))
    probs = np.exp(z) / np.exp(z).sum(axis=2, keepdims=True)
    y = rng.integers(0, 7, 100)
    out = batched_top_label_metrics(probs, y, 15)
    for b in range(4):
        assert out["ece"][b] == pytest.approx(ece(probs[b], y, 15))
        assert out["nll"][b] == pytest.approx(nll(probs[b], y))
        assert out["brier"][b] == pytest.approx(brier(probs[b], y))


def test_bad_input_refused():
    with pytest.raises(DataIntegrityError, match="empty"):
        ece(np.zeros((0, 3)), np.zeros(0, dtype=int))
    with pytest.raises(DataIntegrityError, match="outside"):
        nll(np.full((2, 3), 1 / 3), np.array([0, 3]))
