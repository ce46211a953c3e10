"""Temperature scaling: recovery of a known temperature, per-class fallback, and input refusals."""

import numpy as np
import pytest
from scipy.special import softmax

from fer_core.calibrate.metrics import ece
from fer_core.calibrate.temperature import apply_temperature, fit_per_class_temperature, fit_temperature, nll_at
from fer_core.errors import DataIntegrityError
from fer_core.taxonomy import FER_CLASSES


def _synthetic(n=40_000, seed=0):
    """Labels drawn from softmax(z): z is perfectly calibrated, so z * T_true needs T = T_true."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 7)) * 2.0
    y = (softmax(z, axis=1).cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return z, y


@pytest.mark.parametrize("t_true", [0.5, 2.5])
def test_recovers_known_temperature(t_true):
    z, y = _synthetic()
    fit = fit_temperature(z * t_true, y)
    assert fit.temperature == pytest.approx(t_true, rel=0.02)
    assert fit.nll_after < fit.nll_before
    assert ece(apply_temperature(z * t_true, fit.temperature), y, 15) <= 0.02
    assert ece(apply_temperature(z * t_true, 1.0), y, 15) > 0.05  # it really was mis-scaled
    assert fit.nll_after == pytest.approx(nll_at(z * t_true, y, fit.temperature))


def test_per_class_recovers_class_temperatures():
    """Labels drawn from softmax(log_softmax(z) / t_true): the per-class fit recovers t_true."""
    rng = np.random.default_rng(1)
    z = rng.normal(size=(40_000, 7)) * 2.0
    t_true = np.array([1.0, 1.5, 2.0, 2.5, 3.0, 1.2, 0.8])
    p = apply_temperature(z, t_true)
    y = (p.cumsum(axis=1) > rng.random((len(z), 1))).argmax(axis=1)
    fit = fit_per_class_temperature(z, y, global_temperature=1.8, reg=0.0)
    np.testing.assert_allclose(fit.temperatures, t_true, rtol=0.06)
    assert fit.fallback_classes == () and fit.warnings == ()
    assert fit.nll_after < nll_at(z, y, 1.8)


def test_per_class_temperature_is_shift_invariant():
    """A per-row constant added to the logits (same predictions) changes neither the fit nor the probabilities."""
    z, y = _synthetic(n=3000, seed=4)
    z = z * np.array([1.0, 1.5, 2.0, 2.5, 3.0, 1.2, 0.8])
    shifted = z + np.random.default_rng(5).normal(0, 10, (len(z), 1))
    a = fit_per_class_temperature(z, y, global_temperature=1.5)
    b = fit_per_class_temperature(shifted, y, global_temperature=1.5)
    np.testing.assert_allclose(a.temperatures, b.temperatures, rtol=1e-5)
    assert len(set(np.round(a.temperatures, 3))) > 1  # really per class
    np.testing.assert_allclose(apply_temperature(z, a.temperatures), apply_temperature(shifted, a.temperatures),
                               atol=1e-9)  # fmt: skip
    assert nll_at(z, y, a.temperatures) == pytest.approx(nll_at(shifted, y, a.temperatures))
    # a global T is shift-invariant too, and equals plain softmax(z / T)
    np.testing.assert_allclose(apply_temperature(shifted, 1.7), softmax(z / 1.7, axis=1), atol=1e-9)


def test_per_class_absent_class_keeps_global_t_with_warning():
    z, y = _synthetic(n=3000, seed=2)
    y = np.where(y == 1, 0, y)  # no 'disgust' in validation
    fit = fit_per_class_temperature(z * 2.0, y, global_temperature=2.0)
    assert fit.temperatures[1] == 2.0
    assert fit.fallback_classes == ("disgust",)
    assert "disgust" in fit.warnings[0] and "global T" in fit.warnings[0]


def test_refuses_bad_validation_input():
    z, y = _synthetic(n=50)
    bad = z.copy()
    bad[[3, 4], 0] = np.nan
    bad[4, 1] = np.inf
    with pytest.raises(DataIntegrityError, match=r"3 NaN/Inf values in 2 rows"):
        fit_temperature(bad, y)
    with pytest.raises(DataIntegrityError, match="labels outside"):
        fit_temperature(z, np.where(y == 0, 7, y))
    with pytest.raises(DataIntegrityError, match="empty"):
        fit_temperature(np.zeros((0, 7)), np.zeros(0, dtype=int))
    with pytest.raises(DataIntegrityError, match="pass the raw logits"):
        fit_temperature(softmax(z, axis=1), y)
    with pytest.raises(DataIntegrityError, match=r"\[N, 7\]"):
        fit_per_class_temperature(z[:, :5], y, 1.0, FER_CLASSES)
