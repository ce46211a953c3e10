"""Replay of the stabiliser over a recorded probability log: the fast objective of stabiliser sweeps."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

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


def load_replay_log(csv_path: str | Path, classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A runner's ``frames.csv`` as replay input: the largest face per frame.

    Returns:
        ``probs [T, K]`` (the logged calibrated probabilities), ``times [T]`` seconds, ``true_labels [T]`` class indices
        with ``-1`` for frames without an operator label or without a face.

    Raises:
        DataIntegrityError: the file is missing, lacks probability columns for ``classes``, or has no face rows.
    """
    import pandas as pd

    p = Path(csv_path)
    if not p.is_file():
        raise DataIntegrityError(f"frame log {p} does not exist")
    df = pd.read_csv(p)
    cols = [f"p_{c}" for c in classes]
    missing = [c for c in [*cols, "timestamp_s", "frame", "w", "h", "true_label"] if c not in df.columns]
    if missing:
        raise DataIntegrityError(f"{p}: missing columns {missing}; is it a ferflow runner log?")
    df = df.dropna(subset=cols)
    if df.empty:
        raise DataIntegrityError(f"{p}: no frame with a face to replay")
    df = df.assign(area=df["w"] * df["h"]).sort_values(["frame", "area"], ascending=[True, False])
    df = df.drop_duplicates("frame")
    index = {c: i for i, c in enumerate(classes)}
    labels = df["true_label"].map(index).fillna(-1).to_numpy(np.int64)
    return df[cols].to_numpy(np.float64), df["timestamp_s"].to_numpy(np.float64), labels
