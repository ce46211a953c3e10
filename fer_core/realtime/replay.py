"""Replay of the stabiliser over a recorded probability log: the fast objective of stabiliser sweeps."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fer_core.errors import DataIntegrityError
from fer_core.realtime.stabilize import UNKNOWN, StabilizerConfig, stabilize_sequence


def replay_metrics(
    probs: np.ndarray,
    times: np.ndarray,
    true_labels: np.ndarray,
    cfg: StabilizerConfig,
    class_thresholds: Sequence[float] | None = None,
) -> dict[str, float]:
    """Stabilise a recorded sequence and score it.

    Args:
        probs: calibrated probabilities ``[T, K]`` of one track, in time order.
        times: timestamps in seconds ``[T]`` (non-decreasing).
        true_labels: class index per frame ``[T]``; ``-1`` = no label (excluded from accuracy and unknown rate).
        cfg: stabiliser knobs.
        class_thresholds: per-class abstention thresholds (calibration.json), or ``None``.

    Returns:
        ``accuracy`` (unknown counts as wrong) and ``unknown_rate`` over labelled frames; ``jitter_per_min``:
        changes of the output label (unknown included) per minute of the whole sequence.

    Raises:
        DataIntegrityError: lengths disagree, times go backwards, or no frame is labelled.
    """
    p = np.asarray(probs)
    t = np.asarray(times, dtype=np.float64)
    y = np.asarray(true_labels, dtype=np.int64)
    if not (len(p) == len(t) == len(y)):
        raise DataIntegrityError(f"probs/times/true_labels lengths differ: {len(p)}, {len(t)}, {len(y)}")
    if len(t) > 1 and np.any(np.diff(t) < 0):
        raise DataIntegrityError(f"times go backwards at frame {int(np.argmax(np.diff(t) < 0)) + 1}")
    labelled = y >= 0
    if not labelled.any():
        raise DataIntegrityError("no labelled frame (all true_labels are -1): nothing to score")
    out = stabilize_sequence(p, cfg, class_thresholds)
    minutes = max(float(t[-1] - t[0]), 1e-9) / 60.0
    return {
        "accuracy": float(np.mean(out[labelled] == y[labelled])),
        "jitter_per_min": float(np.count_nonzero(out[1:] != out[:-1]) / minutes),
        "unknown_rate": float(np.mean(out[labelled] == UNKNOWN)),
    }
