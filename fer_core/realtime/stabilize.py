"""Per-track label stabiliser: EMA on calibrated probabilities → sliding-window vote → hysteresis → unknown gating.

The streaming :class:`Stabilizer` (runner) and the vectorised :func:`stabilize_sequence` (replay, sweeps) implement the
same rule; a test checks they agree frame by frame.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import Field, model_validator
from scipy.signal import lfilter

from fer_core.config import FrozenModel
from fer_core.errors import ConfigError

UNKNOWN = -1
# Vote ties are broken by the EMA probability; scaled below 1 so it never outweighs a whole vote.
_TIE = 0.5


class StabilizerConfig(FrozenModel):
    """Stabiliser knobs (also a bundle's ``stabilizer.json``).

    Attributes:
        alpha: EMA weight of the newest frame (1 = no smoothing).
        delta: hysteresis margin: switch only when EMA(new) > EMA(current) + delta.
        window: vote window in frames.
        min_count: votes (frames whose EMA argmax is the label) needed inside the window to propose a label.
        unknown_threshold: global abstention threshold on the EMA probability of the held label.
        use_class_thresholds: also apply the per-class thresholds of ``calibration.json`` (the stricter wins).
    """

    alpha: float = Field(0.3, gt=0, le=1)
    delta: float = Field(0.1, ge=0, le=1)
    window: int = Field(8, ge=1, le=600)
    min_count: int = Field(5, ge=1)
    unknown_threshold: float = Field(0.4, ge=0, le=1)
    use_class_thresholds: bool = True

    @model_validator(mode="after")
    def _count_fits(self) -> StabilizerConfig:
        if self.min_count > self.window:
            raise ConfigError(f"min_count ({self.min_count}) cannot exceed window ({self.window})")
        return self


def gate_thresholds(cfg: StabilizerConfig, n_classes: int, class_thresholds: Sequence[float] | None) -> np.ndarray:
    """Effective abstention threshold per class ``[K]``: max(global, per-class) when per-class ones are used."""
    thr = np.full(n_classes, cfg.unknown_threshold, dtype=np.float64)
    if cfg.use_class_thresholds and class_thresholds is not None:
        if len(class_thresholds) != n_classes:
            raise ConfigError(f"{len(class_thresholds)} class thresholds for {n_classes} classes")
        thr = np.maximum(thr, np.asarray(class_thresholds, dtype=np.float64))
    return thr


def _hysteresis_step(state: int, cand: int, ema: np.ndarray, delta: float) -> int:
    if cand == UNKNOWN or cand == state:
        return state
    if state == UNKNOWN or ema[cand] > ema[state] + delta:
        return cand
    return state


@dataclass(frozen=True)
class StabStep:
    """One stabiliser output: ``label`` (class index or :data:`UNKNOWN`), ``held`` (label before gating),
    ``voted`` (window proposal or UNKNOWN), ``ema`` ``[K]``."""

    label: int
    held: int
    voted: int
    ema: np.ndarray


class Stabilizer:
    """Streaming stabiliser for one track.

    Args:
        cfg: the knobs (may be replaced live with :meth:`set_config`).
        n_classes: K.
        class_thresholds: per-class thresholds from ``calibration.json`` (or ``None``).
    """

    def __init__(self, cfg: StabilizerConfig, n_classes: int, class_thresholds: Sequence[float] | None = None):
        self.n_classes = n_classes
        self._class_thr = class_thresholds
        self._ema: np.ndarray | None = None
        self._state = UNKNOWN
        self.set_config(cfg)

    def set_config(self, cfg: StabilizerConfig) -> None:
        """Apply new knobs, keeping the EMA, the held label and the most recent votes."""
        self.cfg = cfg
        self._thr = gate_thresholds(cfg, self.n_classes, self._class_thr)
        old = list(getattr(self, "_votes", []))
        self._votes: deque[int] = deque(old[-cfg.window :], maxlen=cfg.window)

    def update(self, probs: np.ndarray) -> StabStep:
        """Feed calibrated probabilities ``[K]`` of the newest frame; returns the stabilised output."""
        p = np.asarray(probs, dtype=np.float64)
        a = self.cfg.alpha
        self._ema = p.copy() if self._ema is None else a * p + (1.0 - a) * self._ema
        ema = self._ema
        self._votes.append(int(np.argmax(ema)))
        counts = np.bincount(np.fromiter(self._votes, int), minlength=self.n_classes).astype(np.float64)
        cand = int(np.argmax(counts + _TIE * ema))
        voted = cand if counts[cand] >= self.cfg.min_count else UNKNOWN
        self._state = _hysteresis_step(self._state, voted, ema, self.cfg.delta)
        held = self._state
        label = held if held != UNKNOWN and ema[held] >= self._thr[held] else UNKNOWN
        return StabStep(label=label, held=held, voted=voted, ema=ema.copy())


def stabilize_sequence(
    probs: np.ndarray, cfg: StabilizerConfig, class_thresholds: Sequence[float] | None = None
) -> np.ndarray:
    """Vectorised equivalent of feeding ``probs`` ``[T, K]`` to a fresh :class:`Stabilizer`; returns labels ``[T]``.

    EMA and window votes are vectorised; only the hysteresis state machine is a scalar loop.
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or len(p) == 0:
        raise ConfigError(f"probs must be a non-empty [T, K] array, got shape {p.shape}")
    t, k = p.shape
    a = cfg.alpha
    # y[t] = a·x[t] + (1−a)·y[t−1] with y[0] = x[0]: an IIR filter whose initial state makes the first output x[0].
    ema = lfilter([a], [1.0, -(1.0 - a)], p, axis=0, zi=((1.0 - a) * p[:1]))[0]
    onehot = np.zeros((t + 1, k), dtype=np.int64)
    onehot[np.arange(1, t + 1), ema.argmax(1)] = 1
    cs = np.cumsum(onehot, axis=0)
    counts = cs[1:] - cs[np.maximum(np.arange(1, t + 1) - cfg.window, 0)]
    cand = np.argmax(counts + _TIE * ema, axis=1)
    voted = np.where(counts[np.arange(t), cand] >= cfg.min_count, cand, UNKNOWN)
    held = np.empty(t, dtype=np.int64)
    state, delta = UNKNOWN, cfg.delta
    for i in range(t):
        state = _hysteresis_step(state, int(voted[i]), ema[i], delta)
        held[i] = state
    thr = gate_thresholds(cfg, k, class_thresholds)
    safe = np.maximum(held, 0)
    ok = (held != UNKNOWN) & (ema[np.arange(t), safe] >= thr[safe])
    return np.where(ok, held, UNKNOWN)
