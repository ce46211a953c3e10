"""Stabiliser: the stage order (EMA → vote → hysteresis → gating) hand-checked, streaming == vectorised, replay."""

from __future__ import annotations

import numpy as np
import pytest

from fer_core.errors import DataIntegrityError
from fer_core.realtime import UNKNOWN, Stabilizer, StabilizerConfig, replay_metrics, stabilize_sequence

U = UNKNOWN
SEQ = np.array(
    [[0.8, 0.1, 0.1], [0.8, 0.1, 0.1], [0.4, 0.5, 0.1], [0.4, 0.5, 0.1], [0.1, 0.85, 0.05]], dtype=np.float64
)


def _labels(cfg, probs, thr=None):
    s = Stabilizer(cfg, probs.shape[1], thr)
    return [s.update(p).label for p in probs]


def test_vote_then_hysteresis_hand_checked():
    # alpha=1: no smoothing, so every step can be followed by hand (see the comments per frame).
    cfg = StabilizerConfig(alpha=1.0, window=3, min_count=2, delta=0.2, unknown_threshold=0.0)
    # t0: 1 vote < 2 → unknown; t1: 2 votes → 0; t2: votes 0,0,1 → 0; t3: votes 0,1,1 proposes 1 but
    # 0.5 > 0.4 + 0.2 fails → hold 0; t4: 0.85 > 0.1 + 0.2 → switch to 1.
    assert _labels(cfg, SEQ) == [U, 0, 0, 0, 1]
    no_hyst = cfg.model_copy(update={"delta": 0.0})
    assert _labels(no_hyst, SEQ) == [U, 0, 0, 1, 1]


def test_unknown_gating_global_and_per_class():
    cfg = StabilizerConfig(alpha=1.0, window=3, min_count=2, delta=0.2, unknown_threshold=0.5)
    assert _labels(cfg, SEQ) == [U, 0, U, U, 1]  # held 0 at 0.4 < 0.5 is reported unknown, but still held
    strict0 = [0.9, 0.0, 0.0]
    cfg0 = cfg.model_copy(update={"unknown_threshold": 0.0})
    assert _labels(cfg0, SEQ, strict0) == [U, U, U, U, 1]
    assert _labels(cfg0.model_copy(update={"use_class_thresholds": False}), SEQ, strict0) == [U, 0, 0, 0, 1]


def test_ema_comes_before_the_vote():
    cfg = StabilizerConfig(alpha=0.5, window=1, min_count=1, delta=0.0, unknown_threshold=0.0)
    s = Stabilizer(cfg, 2)
    assert s.update(np.array([0.9, 0.1])).label == 0
    step = s.update(np.array([0.3, 0.7]))  # raw argmax is 1, EMA is [0.6, 0.4]
    np.testing.assert_allclose(step.ema, [0.6, 0.4])
    assert step.label == 0 and step.voted == 0


def test_streaming_equals_vectorised_and_live_config_change():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.full(7, 0.5), size=300)
    thr = list(rng.uniform(0.0, 0.5, 7))
    for cfg in (StabilizerConfig(), StabilizerConfig(alpha=0.7, delta=0.0, window=4, min_count=2)):
        assert _labels(cfg, probs, thr) == stabilize_sequence(probs, cfg, thr).tolist()
    s = Stabilizer(StabilizerConfig(window=8, min_count=5), 7)
    for p in probs[:20]:
        s.update(p)
    s.set_config(StabilizerConfig(window=3, min_count=2))
    assert len(s._votes) == 3 and s.update(probs[20]).ema.shape == (7,)


def test_config_validation():
    with pytest.raises(ValueError, match="min_count"):  # pydantic wraps the ConfigError
        StabilizerConfig(window=3, min_count=4)
    with pytest.raises(ValueError):
        StabilizerConfig(alpha=0.0)


def test_replay_metrics_hand_checked():
    cfg = StabilizerConfig(alpha=1.0, window=3, min_count=2, delta=0.2, unknown_threshold=0.0)
    times = np.arange(5) * 15.0  # 60 s in total
    out = replay_metrics(SEQ, times, np.array([0, 0, 0, 1, 1]), cfg)  # labels [U, 0, 0, 0, 1]
    assert out == pytest.approx({"accuracy": 3 / 5, "jitter_per_min": 2.0, "unknown_rate": 1 / 5})
    out = replay_metrics(SEQ, times, np.array([-1, 0, 0, -1, 1]), cfg)
    assert out["accuracy"] == 1.0 and out["unknown_rate"] == 0.0
    with pytest.raises(DataIntegrityError, match="no labelled frame"):
        replay_metrics(SEQ, times, np.full(5, -1), cfg)
    with pytest.raises(DataIntegrityError, match="lengths"):
        replay_metrics(SEQ, times[:4], np.zeros(5), cfg)
