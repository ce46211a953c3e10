"""calibrate() keeps a temperature only when it lowers validation ECE; otherwise T falls back to 1 and says so."""

import json

import numpy as np
import pytest
from scipy.special import softmax

from fer_core.calibrate import CalibrationConfig, calibrate
from fer_core.calibrate import metrics as pm
from fer_core.calibrate.temperature import apply_temperature, fit_temperature
from fer_core.sink import ListSink

C = 7
CFG = CalibrationConfig(plots=False, thresholds=None)


def weak_model(seed: int, n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Near-chance logits: noise plus a small nudge toward the true class."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, C, n)
    z = rng.normal(size=(n, C)) * 0.5
    z[np.arange(n), y] += 0.3
    return z, y


def test_a_fit_that_worsens_validation_ece_falls_back_to_t_1(tmp_path):
    zv, yv = weak_model(7)
    fitted = fit_temperature(zv, yv).temperature
    ece_raw, ece_fit = pm.ece(softmax(zv, axis=1), yv, 15), pm.ece(apply_temperature(zv, fitted), yv, 15)
    assert ece_fit > ece_raw + 0.01  # the premise: the NLL optimum is worse in ECE on this validation set
    zt, yt = weak_model(8)
    sink = ListSink()
    res = calibrate(zv, yv, zt, yt, CFG, tmp_path / "cal", sink)
    assert res.fell_back and res.spec.temperature == 1.0
    assert res.fitted_temperature == pytest.approx(fitted)
    assert json.loads(res.calibration_path.read_text())["temperature"] == 1.0
    assert res.val_metrics["val_after"] == res.val_metrics["val_before"]
    assert res.val_metrics["val_before"]["ece_15"] == pytest.approx(ece_raw)
    assert any("worse" in w and "falls back to 1" in w and f"{fitted:.3f}" in w for w in res.warnings), res.warnings
    assert res.spec.metrics.after == res.spec.metrics.before  # test metrics at T = 1 both times
    assert sink.series("calibration/fell_back") == [1.0]
    assert sink.series("calibration/fitted_temperature") == [pytest.approx(fitted)]
    assert sink.series("val_after/ece_15") and sink.series("val_before/macro_f1")


def test_a_fit_that_helps_is_kept_and_validation_metrics_are_reported(tmp_path):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(4000, C)) * 2.0
    y = (softmax(z, axis=1).cumsum(axis=1) > rng.random((4000, 1))).argmax(axis=1)
    z = z * 2.0  # over-confident by T = 2
    res = calibrate(z[:2000], y[:2000], z[2000:], y[2000:], CFG, tmp_path / "cal", ListSink())
    assert not res.fell_back and res.spec.temperature == pytest.approx(res.fitted_temperature)
    assert res.spec.temperature == pytest.approx(2.0, rel=0.1)
    val = res.val_metrics
    assert val["val_after"]["ece_15"] < val["val_before"]["ece_15"]
    assert val["val_after"]["accuracy"] == val["val_before"]["accuracy"]  # a global T never moves the argmax
    assert not any("worse" in w for w in res.warnings)
