"""Promotion gates: chance and majority baselines by hand and against sklearn; no configuration promotes a guesser."""

import numpy as np
import pytest
from pydantic import ValidationError
from sklearn.metrics import accuracy_score, f1_score

from fer_core.errors import ConfigError
from fer_core.export.gates import PromotionGates, baselines, check_promotion
from fer_core.taxonomy import FER_CLASSES

COUNTS = [10, 0, 0, 30, 20, 20, 20]  # 100 validation faces, 'happy' the majority at 30 %


def test_baselines_by_hand_and_by_sklearn():
    b = baselines(COUNTS)
    assert b.chance_macro_f1 == pytest.approx(1 / 7)
    assert (b.majority_class, b.majority_share) == ("happy", pytest.approx(0.3))
    assert b.majority_macro_f1 == pytest.approx(2 * 0.3 / 1.3 / 7)  # F1 of 'happy' = 2p/(1+p), the others 0
    y = np.repeat(np.arange(7), COUNTS)
    always = np.full_like(y, FER_CLASSES.index("happy"))
    assert f1_score(y, always, average="macro", labels=range(7), zero_division=0) == pytest.approx(b.majority_macro_f1)
    assert accuracy_score(y, always) == pytest.approx(b.majority_share)


def test_a_near_chance_model_fails_even_with_every_configured_floor_at_zero():
    gates = PromotionGates(min_macro_f1=0.0, max_ece=1.0)
    verdict = check_promotion({"macro_f1": 0.085, "accuracy": 0.18, "ece": 0.0142}, gates, baselines([4] * 7))
    assert not verdict.passed
    assert [f.split(" 0.")[0] for f in verdict.failures] == ["FAIL: val macro-F1", "FAIL: val accuracy"]
    assert "chance 0.143 + margin 0.10" in verdict.failures[0]
    assert verdict.summary().startswith("FAIL")


def test_thresholds_margin_and_configured_floor():
    b = baselines(COUNTS)
    gates = PromotionGates(min_macro_f1=0.0, min_margin_over_chance=0.1, max_ece=0.05)
    f1_floor, acc_floor = 1 / 7 + 0.1, 0.3 + 0.1
    ok = {"macro_f1": f1_floor + 1e-6, "accuracy": acc_floor + 1e-6, "ece": 0.05}
    assert check_promotion(ok, gates, b).passed
    for key, bad in (("macro_f1", f1_floor - 1e-6), ("accuracy", acc_floor - 1e-6), ("ece", 0.0501)):
        verdict = check_promotion({**ok, key: bad}, gates, b)
        assert len(verdict.failures) == 1, verdict.failures
    strict = PromotionGates(min_macro_f1=0.6, max_ece=0.05)
    verdict = check_promotion({**ok, "macro_f1": 0.59}, strict, b)
    assert verdict.failures == ["FAIL: val macro-F1 0.5900, needs >= 0.6000 (configured floor 0.60)"]


def test_missing_or_nan_metrics_fail_and_bad_settings_are_refused():
    gates, b = PromotionGates(), baselines(COUNTS)
    assert len(check_promotion({}, gates, b).failures) == 3
    assert not check_promotion({"macro_f1": float("nan"), "accuracy": 0.9, "ece": 0.0}, gates, b).passed
    with pytest.raises(ValidationError):
        PromotionGates(min_margin_over_chance=0.0)  # a zero margin would let a guesser through
    with pytest.raises(ConfigError, match="one per class"):
        baselines([0] * 7)
    with pytest.raises(ConfigError):
        baselines([1, 2, 3])
