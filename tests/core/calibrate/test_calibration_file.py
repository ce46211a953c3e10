"""calibration.json round trip and validation, apply_calibration, and the one-call calibrate() on synthetic logits."""

import json

import cv2
import numpy as np
import pytest
from scipy.special import softmax

from fer_core.calibrate import (
    CalibrationConfig,
    apply_calibration,
    calibrate,
    read_calibration_json,
    write_calibration_json,
)
from fer_core.errors import ConfigError, DataIntegrityError
from fer_core.sink import ListSink
from fer_core.taxonomy import FER_CLASSES

C = len(FER_CLASSES)


def test_round_trip_and_contract_keys(tmp_path):
    p = tmp_path / "calibration.json"
    digest = write_calibration_json(p, FER_CLASSES, 1.7, {"ece_15": 0.1}, {"ece_15": 0.02},
                                    [1.5] * C, [0.5] * C)  # fmt: skip
    raw = json.loads(p.read_text())
    assert set(raw) == {"classes", "temperature", "per_class_temperature", "thresholds", "metrics"}
    assert set(raw["metrics"]) >= {"before", "after"}
    spec = read_calibration_json(p)
    assert spec.temperature == 1.7 and spec.classes == FER_CLASSES and len(digest) == 64
    z = np.array([[2.0, 0, 0, 0, 0, 0, 1.0]])
    np.testing.assert_allclose(apply_calibration(z, spec), softmax(z / 1.7, axis=1))
    np.testing.assert_allclose(apply_calibration(z, spec, per_class=True), softmax(z / 1.5, axis=1))


def test_invalid_content_refused_and_nothing_written(tmp_path):
    p = tmp_path / "calibration.json"
    with pytest.raises(ConfigError, match="per_class_temperature has 3 entries"):
        write_calibration_json(p, FER_CLASSES, 1.0, {}, {}, [1.0] * 3)
    with pytest.raises(ConfigError, match="temperatures must be finite"):
        write_calibration_json(p, FER_CLASSES, -1.0, {}, {})
    assert not p.exists()
    p.write_text(json.dumps({"classes": ["a"], "temperature": 1.0, "metrics": {"before": {}, "after": {}}, "x": 1}))
    with pytest.raises(ConfigError, match="x"):
        read_calibration_json(p)


def test_apply_calibration_refusals(tmp_path):
    p = tmp_path / "c.json"
    write_calibration_json(p, FER_CLASSES, 2.0, {}, {})
    spec = read_calibration_json(p)
    with pytest.raises(ConfigError, match="per_class_temperature null"):
        apply_calibration(np.zeros((1, C)) + np.arange(C), spec, per_class=True)
    with pytest.raises(DataIntegrityError, match="pass the raw logits"):
        apply_calibration(np.full((2, C), 1 / C), spec)


def test_calibrate_end_to_end(tmp_path):
    rng = np.random.default_rng(0)
    n = 6000
    z = rng.normal(size=(n, C)) * 2.0
    y = (softmax(z, axis=1).cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    z = z * 2.0  # over-confident by T = 2
    sink = ListSink()
    res = calibrate(z[:3000], y[:3000], z[3000:], y[3000:], CalibrationConfig(), tmp_path / "cal", sink)
    assert res.temperature_fit.temperature == pytest.approx(2.0, rel=0.08)
    m = res.spec.metrics
    assert m.after["ece_15"] < m.before["ece_15"] and m.after["nll"] < m.before["nll"]
    assert m.after["accuracy"] == m.before["accuracy"]  # a global T never changes the argmax
    assert "f1/disgust" in m.after and "classwise_ece/fear" in m.after and m.after_per_class is not None
    assert len(res.spec.thresholds) == C and len(res.spec.per_class_temperature) == C
    assert list(res.test_abstention.columns)[:3] == ["class", "tau", "precision"]
    for name, path in res.plots.items():
        img = cv2.imread(str(path))
        assert img is not None and img.shape[0] > 100 and img.std() > 0, name
    assert {p.name for p in (tmp_path / "cal").iterdir()} == {
        "calibration.json", "abstention_test.csv", "abstention_val.csv", "reliability_before.png",
        "reliability_after.png", "confidence_after.png", "selective_after.png", "confusion.png",
    }  # fmt: skip
    assert read_calibration_json(res.calibration_path) == res.spec
    assert sink.series("after/ece_15") and len(sink.artifacts) == 7


def test_calibrate_refuses_bad_test_set_before_writing(tmp_path):
    z = np.random.default_rng(0).normal(size=(50, C))
    y = np.arange(50) % C
    with pytest.raises(DataIntegrityError, match="test set is empty"):
        calibrate(z, y, np.zeros((0, C)), np.zeros(0, dtype=int), CalibrationConfig(plots=False), tmp_path / "o")
    assert not (tmp_path / "o").exists()
