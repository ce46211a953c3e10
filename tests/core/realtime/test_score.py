"""Protocol-Lite scoring on a hand-built log with known accuracy, F1, jitter and time-to-lock."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from fer_core.errors import DataIntegrityError
from fer_core.realtime import score


def _pred(t: float) -> str:
    if t < 0.5:
        return "unknown"
    if t < 3.0:
        return "neutral" if abs(t - 1.5) < 1e-9 else "happy"
    return "happy" if t < 4.0 else "sad"


def _write_log(d, label_events=True, window=5):
    rows = []
    for i in range(60):  # 10 fps, 0.0 .. 5.9 s
        t = round(i * 0.1, 6)
        if abs(t - 0.3) < 1e-9:  # a frame without a face
            rows.append(
                {"timestamp_s": t, "frame": i, "track_id": -1, "w": None, "h": None, "smoothed_label": "unknown"}
            )
            continue
        rows.append({"timestamp_s": t, "frame": i, "track_id": 0, "w": 100, "h": 100, "smoothed_label": _pred(t)})
        if abs(t - 2.0) < 1e-9:  # a smaller second face must not be scored
            rows.append({"timestamp_s": t, "frame": i, "track_id": 1, "w": 20, "h": 20, "smoothed_label": "angry"})
    pd.DataFrame(rows).to_csv(d / "frames.csv", index=False)
    events = [{"t": 0.0, "frame": -1, "type": "session_start", "fps": 10.0, "stabilizer": {"window": window}}]
    if label_events:
        events += [{"t": t, "frame": round(t * 10), "type": "true_label", "label": lab}
                   for t, lab in ((0.0, "happy"), (3.0, "sad"), (5.0, "angry"), (5.4, None))]  # fmt: skip
    (d / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))


def test_score_hand_built_log(tmp_path):
    _write_log(tmp_path)
    m, table = score(tmp_path, grace_ms=0.0)
    # happy segment: 27 evaluated frames (0.3..2.9), 24 right; sad: 17 (3.3..4.9), 10 right.
    assert m["evaluated_frames"] == 44
    assert m["accuracy"] == pytest.approx(34 / 44)
    assert m["macro_f1"] == pytest.approx((48 / 58 + 20 / 27) / 2)
    assert m["jitter_per_min"] == pytest.approx(4 / (4.5 / 60))
    assert m["unknown_rate"] == pytest.approx(2 / 44)
    assert [s["time_to_lock_ms"] for s in m["segments"]] == pytest.approx([500.0, 1000.0])
    assert m["time_to_lock_ms_median"] == pytest.approx(750.0)
    assert (m["scored_segments"], m["dropped_segments"], m["locked_segments"]) == (2, 1, 2)
    assert "accuracy" in table and "happy" in table and "sad" in table
    json.dumps(m)


def test_default_grace_is_the_vote_window(tmp_path):
    _write_log(tmp_path, window=5)  # 5 frames at 10 fps → 500 ms grace + 250 ms settle
    m, _ = score(tmp_path / "frames.csv")
    assert m["excluded_ms_after_change"] == pytest.approx(750.0)
    # happy: 0.8..2.9 (22 frames, neutral at 1.5 wrong); sad: 3.8..4.9 (12 frames, 3.8/3.9 wrong)
    assert m["evaluated_frames"] == 34 and m["accuracy"] == pytest.approx(31 / 34)


def test_log_without_label_events_is_an_error(tmp_path):
    _write_log(tmp_path, label_events=False)
    with pytest.raises(DataIntegrityError, match="no operator label events"):
        score(tmp_path)
    with pytest.raises(DataIntegrityError, match="does not exist"):
        score(tmp_path / "missing")
