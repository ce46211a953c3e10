"""Per-class abstention thresholds, selective-prediction (coverage vs risk) curve and AURC."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from fer_core.config import FrozenModel
from fer_core.errors import ConfigError, DataIntegrityError
from fer_core.taxonomy import FER_CLASSES

ABSTAIN = -1


class ThresholdConfig(FrozenModel):
    """Grid and constraint for per-class thresholds (defaults: 0.30..0.80 step 0.05, precision >= 0.75)."""

    start: float = Field(0.30, ge=0.0, le=1.0)
    stop: float = Field(0.80, ge=0.0, le=1.0)
    step: float = Field(0.05, gt=0.0, le=1.0)
    min_precision: float = Field(0.75, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _ordered(self) -> ThresholdConfig:
        if self.stop < self.start:
            raise ValueError(f"stop ({self.stop}) must be >= start ({self.start})")
        return self

    def grid(self) -> np.ndarray:
        """The candidate thresholds ``[S]``, both ends included."""
        n = int(round((self.stop - self.start) / self.step))
        return np.round(self.start + self.step * np.arange(n + 1), 10)


@dataclass(frozen=True)
class ThresholdResult:
    """Chosen ``thresholds [C]``, a note per class (``"ok"``, ``"constraint_unmet"``, ``"never_predicted"``), and
    the per-class abstention table measured on the selection data."""

    thresholds: tuple[float, ...]
    notes: tuple[str, ...]
    table: pd.DataFrame


def _check(probs: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probs, dtype=np.float64)
    t = np.asarray(y, dtype=np.int64)
    if p.ndim != 2 or t.shape != (p.shape[0],) or p.shape[0] == 0:
        raise DataIntegrityError(f"need probs [N, C] and labels [N] with N > 0, got {p.shape} and {t.shape}")
    if ((t < 0) | (t >= p.shape[1])).any():
        raise DataIntegrityError(f"{int(((t < 0) | (t >= p.shape[1])).sum())} labels outside [0, {p.shape[1] - 1}]")
    return p, t


def per_class_counts(probs: np.ndarray, y: np.ndarray, taus: np.ndarray) -> dict[str, np.ndarray]:
    """Counts ``[S, C]`` for every candidate threshold ``tau_s`` applied to every class.

    A sample predicted as class c (argmax) is *accepted* when its confidence ``max p >= tau``; otherwise the model
    abstains. ``accepted[s, c]`` = accepted predictions of c, ``tp[s, c]`` = those that are truly c,
    ``predicted[c]`` = all argmax predictions of c, ``support[c]`` = samples whose label is c.
    """
    p, t = _check(probs, y)
    c = p.shape[1]
    pred, conf = p.argmax(axis=1), p.max(axis=1)
    keep = conf[None, :] >= np.asarray(taus)[:, None]  # [S, N]
    hit = (pred == t)[None, :] & keep
    s_idx = np.arange(keep.shape[0])[:, None] * c + pred[None, :]
    size = keep.shape[0] * c
    return {
        "accepted": np.bincount(s_idx.ravel(), weights=keep.ravel(), minlength=size).reshape(-1, c),
        "tp": np.bincount(s_idx.ravel(), weights=hit.ravel(), minlength=size).reshape(-1, c),
        "predicted": np.bincount(pred, minlength=c).astype(np.float64),
        "support": np.bincount(t, minlength=c).astype(np.float64),
    }


def _scores(k: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(k["accepted"] > 0, k["tp"] / k["accepted"], np.nan)
        recall = np.where(k["support"] > 0, k["tp"] / k["support"], 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
        coverage = np.where(k["predicted"] > 0, k["accepted"] / k["predicted"], 0.0)
    return {"precision": precision, "recall": recall, "f1": np.nan_to_num(f1), "coverage": coverage}


def select_thresholds(
    probs: np.ndarray, y: np.ndarray, cfg: ThresholdConfig = ThresholdConfig(), classes: Sequence[str] = FER_CLASSES
) -> ThresholdResult:
    """Choose a threshold ``tau_c`` per class on validation probabilities.

    Definitions (per class c, for a candidate tau): the prediction ``argmax p = c`` is accepted when ``max p >= tau``;
    ``precision_c`` = accepted correct c / accepted c; ``recall_c`` = accepted correct c / samples labelled c
    (abstentions count as misses); ``F1_c`` = their harmonic mean. Chosen: the tau with the highest F1_c among those
    with ``precision_c >= cfg.min_precision`` (ties: the lowest tau, i.e. the most coverage). Fallback when no tau
    meets the constraint: the tau with the highest precision (ties: lowest tau), note ``"constraint_unmet"``. A class
    never predicted gets the highest grid tau, note ``"never_predicted"``.

    Args:
        probs: ``[N, C]`` calibrated validation probabilities.
        y: ``[N]`` labels.
        cfg: grid and precision constraint.
        classes: class names ``[C]``.

    Returns:
        :class:`ThresholdResult`.
    """
    p, t = _check(probs, y)
    if p.shape[1] != len(classes):
        raise DataIntegrityError(f"probs have {p.shape[1]} columns for {len(classes)} classes {list(classes)}")
    taus = cfg.grid()
    sc = _scores(per_class_counts(p, t, taus))
    chosen, notes = [], []
    for c in range(len(classes)):
        prec = sc["precision"][:, c]
        ok = np.nan_to_num(prec, nan=-1.0) >= cfg.min_precision
        if np.isnan(prec).all():
            chosen.append(float(taus[-1]))
            notes.append("never_predicted")
        elif ok.any():
            chosen.append(float(taus[np.argmax(np.where(ok, sc["f1"][:, c], -1.0))]))
            notes.append("ok")
        else:
            chosen.append(float(taus[np.nanargmax(prec)]))
            notes.append("constraint_unmet")
    return ThresholdResult(tuple(chosen), tuple(notes), abstention_table(p, t, chosen, classes, notes))


def abstention_table(
    probs: np.ndarray,
    y: np.ndarray,
    thresholds: Sequence[float],
    classes: Sequence[str] = FER_CLASSES,
    notes: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per class: ``tau``, ``precision``, ``recall``, ``f1``, ``coverage`` (accepted / predicted as c),
    ``abstention_rate`` (1 - coverage), ``n_predicted``, ``support``, ``note`` for the given thresholds."""
    p, t = _check(probs, y)
    taus = np.asarray(thresholds, dtype=np.float64)
    if taus.shape != (len(classes),) or p.shape[1] != len(classes):
        raise ConfigError(f"need one threshold per class ({len(classes)}), got {taus.tolist()}")
    c_idx = np.arange(len(classes))
    k = per_class_counts(p, t, taus)  # row s uses tau_s; take the diagonal (class c with its own tau_c)
    diag = {
        "accepted": k["accepted"][c_idx, c_idx],
        "tp": k["tp"][c_idx, c_idx],
        "predicted": k["predicted"],
        "support": k["support"],
    }
    sc = _scores(diag)
    return pd.DataFrame({
        "class": list(classes), "tau": taus, "precision": sc["precision"], "recall": sc["recall"], "f1": sc["f1"],
        "coverage": sc["coverage"], "abstention_rate": 1.0 - sc["coverage"], "n_predicted": diag["predicted"],
        "support": diag["support"], "note": list(notes) if notes is not None else ["given"] * len(classes),
    })  # fmt: skip


def apply_thresholds(probs: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    """Predictions ``[N]`` with ``ABSTAIN`` (-1) where ``max p < tau`` of the predicted class."""
    p = np.asarray(probs)
    pred = p.argmax(axis=1)
    return np.where(p.max(axis=1) >= np.asarray(thresholds)[pred], pred, ABSTAIN)


def selective_curve(probs: np.ndarray, y: np.ndarray) -> pd.DataFrame:
    """Coverage vs risk when keeping the k most confident samples, k = 1..N.

    Returns:
        DataFrame with ``coverage`` (k / N), ``risk`` (error rate among the kept k) and ``threshold`` (the k-th
        confidence), ordered by coverage.
    """
    p, t = _check(probs, y)
    conf = p.max(axis=1)
    order = np.argsort(-conf, kind="stable")
    err = (p.argmax(axis=1) != t)[order].astype(np.float64)
    k = np.arange(1, p.shape[0] + 1)
    return pd.DataFrame({"coverage": k / p.shape[0], "risk": np.cumsum(err) / k, "threshold": conf[order]})


def aurc(probs: np.ndarray, y: np.ndarray) -> float:
    """Area under the risk-coverage curve: the mean of ``risk`` over k = 1..N (lower is better)."""
    return float(selective_curve(probs, y)["risk"].mean())
