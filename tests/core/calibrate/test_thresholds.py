"""Abstention thresholds on a hand-checkable case, fallbacks, selective curve and AURC."""

import numpy as np
import pytest

from fer_core.calibrate.thresholds import (
    ABSTAIN,
    ThresholdConfig,
    apply_thresholds,
    aurc,
    select_thresholds,
    selective_curve,
)
from fer_core.config import validate_config
from fer_core.errors import ConfigError

CLASSES = ("a", "b", "c")
CFG = ThresholdConfig(start=0.5, stop=0.9, step=0.1, min_precision=0.75)


def _case(extra_wrong_b=False):
    # (confidence of the predicted class, predicted, true)
    rows = [(0.95, 0, 0), (0.85, 0, 0), (0.75, 0, 1), (0.65, 0, 0), (0.9, 1, 1), (0.6, 1, 0), (0.55, 1, 1)]
    if extra_wrong_b:
        rows.append((0.95, 1, 0))
    probs = np.zeros((len(rows), 3))
    for i, (conf, pred, _) in enumerate(rows):
        probs[i, pred] = conf
        probs[i, 1 - pred] = 1 - conf  # class c is never predicted
    return probs, np.array([r[2] for r in rows])


def test_default_grid():
    np.testing.assert_allclose(ThresholdConfig().grid(), np.arange(30, 81, 5) / 100)
    with pytest.raises(ConfigError):
        validate_config({"start": 0.8, "stop": 0.3}, ThresholdConfig)


def test_hand_checked_choice_and_table():
    probs, y = _case()
    res = select_thresholds(probs, y, CFG, CLASSES)
    # a: tau 0.5 and 0.6 both give P=R=F1=0.75 -> the lower tau; b: only tau >= 0.7 reaches P >= 0.75
    assert res.thresholds == (0.5, 0.7, 0.9)
    assert res.notes == ("ok", "ok", "never_predicted")
    t = res.table.set_index("class")
    assert t.loc["a", ["precision", "recall", "f1", "coverage"]].tolist() == pytest.approx([0.75, 0.75, 0.75, 1.0])
    assert t.loc["b", ["precision", "recall", "coverage", "abstention_rate"]].tolist() == pytest.approx(
        [1.0, 1 / 3, 1 / 3, 2 / 3]
    )
    assert np.isnan(t.loc["c", "precision"]) and t.loc["c", "n_predicted"] == 0


def test_constraint_unmet_falls_back_to_highest_precision():
    probs, y = _case(extra_wrong_b=True)
    res = select_thresholds(probs, y, CFG, CLASSES)
    assert res.notes[1] == "constraint_unmet"
    assert res.thresholds[1] == 0.5  # best precision b reaches is 0.5 (at 0.5, 0.7, 0.8, 0.9): the lowest wins
    assert res.table.set_index("class").loc["b", "note"] == "constraint_unmet"


def test_apply_thresholds_abstains_below_class_tau():
    probs, _ = _case()
    out = apply_thresholds(probs, (0.5, 0.7, 0.9))
    assert out.tolist() == [0, 0, 0, 0, 1, ABSTAIN, ABSTAIN]


def test_selective_curve_and_aurc_hand_case():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]])
    y = np.array([0, 0, 0])  # sorted by confidence: right, wrong, right
    curve = selective_curve(probs, y)
    assert curve["risk"].tolist() == pytest.approx([0.0, 0.5, 1 / 3])
    assert curve["coverage"].tolist() == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert aurc(probs, y) == pytest.approx((0 + 0.5 + 1 / 3) / 3)
