"""Multi-face tracking by greedy IoU matching, with per-track median box smoothing."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from fer_core.realtime.detect import Detection

Box = tuple[float, float, float, float]


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two ``(x, y, w, h)`` boxes."""
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax1, bx1) - max(a[0], b[0]))
    ih = max(0.0, min(ay1, by1) - max(a[1], b[1]))
    inter = iw * ih
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Track:
    """One tracked face: raw box history (for the median), last landmarks, frames since last matched."""

    track_id: int
    history: deque[Box]
    landmarks: np.ndarray | None = None
    missed: int = 0
    hits: int = field(default=1)

    def box(self) -> Box:
        """Per-coordinate median of the last boxes (suppresses detector jitter without lagging like a mean)."""
        b = np.median(np.asarray(self.history, dtype=np.float64), axis=0)
        return float(b[0]), float(b[1]), float(b[2]), float(b[3])


class IoUTracker:
    """Greedy IoU association of detections to tracks.

    Args:
        smooth: box-median window (frames with a detection).
        iou_threshold: minimum IoU to continue a track.
        max_missed: a track unmatched for more than this many detection rounds is dropped.
    """

    def __init__(self, smooth: int = 5, iou_threshold: float = 0.3, max_missed: int = 5):
        self.smooth, self.iou_threshold, self.max_missed = smooth, iou_threshold, max_missed
        self.tracks: list[Track] = []
        self._next_id = 0

    def update(self, dets: list[Detection]) -> tuple[list[Track], list[int]]:
        """Match this frame's detections; returns (tracks seen this frame, ids of tracks dropped)."""
        pairs = sorted(
            ((iou(t.box(), d.box), ti, di) for ti, t in enumerate(self.tracks) for di, d in enumerate(dets)),
            reverse=True,
        )
        used_t: set[int] = set()
        used_d: set[int] = set()
        for score, ti, di in pairs:
            if score < self.iou_threshold:
                break
            if ti in used_t or di in used_d:
                continue
            t = self.tracks[ti]
            t.history.append(dets[di].box)
            t.landmarks, t.missed, t.hits = dets[di].landmarks, 0, t.hits + 1
            used_t.add(ti)
            used_d.add(di)
        for ti, t in enumerate(self.tracks):
            if ti not in used_t:
                t.missed += 1
        dropped = [t.track_id for t in self.tracks if t.missed > self.max_missed]
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        for di, d in enumerate(dets):
            if di not in used_d:
                self.tracks.append(Track(self._next_id, deque([d.box], maxlen=self.smooth), d.landmarks))
                self._next_id += 1
        return [t for t in self.tracks if t.missed == 0], dropped

    def carry(self) -> list[Track]:
        """Tracks to use on a frame without detection: those matched at the last detection round."""
        return [t for t in self.tracks if t.missed == 0]
