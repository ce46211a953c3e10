"""Probability-quality metrics: ECE (equal-width and equal-mass bins), classwise ECE, MCE, NLL, Brier."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from fer_core.errors import ConfigError, DataIntegrityError

BinScheme = Literal["uniform", "quantile"]
_EPS = 1e-12


@dataclass(frozen=True)
class ReliabilityBins:
    """Per-bin statistics of a reliability diagram (arrays ``[n_bins]``; empty bins have count 0)."""

    lower: np.ndarray
    upper: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray


def _check(probs: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probs, dtype=np.float64)
    t = np.asarray(y, dtype=np.int64)
    if p.ndim != 2 or t.shape != (p.shape[0],):
        raise DataIntegrityError(f"probs must be [N, C] and labels [N]; got {p.shape} and {t.shape}")
    if p.shape[0] == 0:
        raise DataIntegrityError("cannot compute calibration metrics on an empty set")
    bad = np.flatnonzero((t < 0) | (t >= p.shape[1]))
    if bad.size:
        raise DataIntegrityError(f"{bad.size} labels outside [0, {p.shape[1] - 1}] (e.g. row {bad[0]}: {t[bad[0]]})")
    return p, t


def uniform_bin_index(conf: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-width bin of each confidence: bins ``[k/n, (k+1)/n)``, and 1.0 falls in the last bin."""
    if n_bins < 1:
        raise ConfigError(f"n_bins must be >= 1, got {n_bins}")
    return np.clip((np.asarray(conf) * n_bins).astype(np.int64), 0, n_bins - 1)


def quantile_bin_index(conf: np.ndarray, n_bins: int) -> np.ndarray:
    """Equal-mass bins: sort by confidence and cut into ``n_bins`` runs of (nearly) equal size.

    Ties at a cut are split by the stable sort order, so every bin holds ``floor`` or ``ceil`` of ``N / n_bins``.
    """
    if n_bins < 1:
        raise ConfigError(f"n_bins must be >= 1, got {n_bins}")
    conf = np.asarray(conf)
    order = np.argsort(conf, kind="stable")
    idx = np.empty(conf.shape[0], dtype=np.int64)
    idx[order] = (np.arange(conf.shape[0]) * n_bins) // conf.shape[0]
    return idx


def _bin_index(conf: np.ndarray, n_bins: int, scheme: BinScheme) -> np.ndarray:
    if scheme == "uniform":
        return uniform_bin_index(conf, n_bins)
    if scheme == "quantile":
        return quantile_bin_index(conf, n_bins)
    raise ConfigError(f"unknown bin scheme {scheme!r}; use 'uniform' or 'quantile'")


def _gaps(conf: np.ndarray, hit: np.ndarray, idx: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    count = np.bincount(idx, minlength=n_bins).astype(np.float64)
    csum = np.bincount(idx, weights=conf, minlength=n_bins)
    hsum = np.bincount(idx, weights=hit, minlength=n_bins)
    gap = np.abs(hsum - csum) / np.maximum(count, 1.0)
    return gap, count


def reliability_bins(probs: np.ndarray, y: np.ndarray, n_bins: int = 15, scheme: BinScheme = "uniform"):
    """Top-label reliability statistics per bin (for the diagram and ECE).

    Args:
        probs: ``[N, C]`` probabilities.
        y: ``[N]`` true class indices.
        n_bins: number of bins.
        scheme: ``"uniform"`` (equal width) or ``"quantile"`` (equal mass).

    Returns:
        :class:`ReliabilityBins`.
    """
    p, t = _check(probs, y)
    conf, pred = p.max(axis=1), p.argmax(axis=1)
    idx = _bin_index(conf, n_bins, scheme)
    count = np.bincount(idx, minlength=n_bins).astype(np.float64)
    safe = np.maximum(count, 1.0)
    if scheme == "uniform":
        lower = np.arange(n_bins) / n_bins
        upper = (np.arange(n_bins) + 1) / n_bins
    else:
        lower = np.array([conf[idx == b].min() if count[b] else np.nan for b in range(n_bins)])
        upper = np.array([conf[idx == b].max() if count[b] else np.nan for b in range(n_bins)])
    return ReliabilityBins(lower=lower, upper=upper,
                           confidence=np.bincount(idx, weights=conf, minlength=n_bins) / safe,
                           accuracy=np.bincount(idx, weights=(pred == t).astype(float), minlength=n_bins) / safe,
                           count=count)  # fmt: skip


def ece(probs: np.ndarray, y: np.ndarray, n_bins: int = 15, scheme: BinScheme = "uniform") -> float:
    """Expected calibration error of the top label: ``sum_b n_b/N * |acc_b - conf_b|`` (L1).

    Args:
        probs: ``[N, C]`` probabilities.
        y: ``[N]`` true class indices.
        n_bins: number of bins (10 and 15 are the usual choices).
        scheme: ``"uniform"`` equal-width bins (1.0 in the last bin) or ``"quantile"`` equal-mass bins.
    """
    p, t = _check(probs, y)
    conf = p.max(axis=1)
    gap, count = _gaps(conf, (p.argmax(axis=1) == t).astype(float), _bin_index(conf, n_bins, scheme), n_bins)
    return float((gap * count).sum() / p.shape[0])


def mce(probs: np.ndarray, y: np.ndarray, n_bins: int = 15, scheme: BinScheme = "uniform") -> float:
    """Maximum calibration error: the largest ``|acc_b - conf_b|`` over non-empty bins."""
    p, t = _check(probs, y)
    conf = p.max(axis=1)
    gap, count = _gaps(conf, (p.argmax(axis=1) == t).astype(float), _bin_index(conf, n_bins, scheme), n_bins)
    return float(gap[count > 0].max())


def classwise_ece(probs: np.ndarray, y: np.ndarray, n_bins: int = 15) -> tuple[float, np.ndarray]:
    """Classwise ECE: for each class c, equal-width-binned ``|freq(y=c) - mean p_c|`` over all samples.

    Returns:
        ``(mean over classes, per-class values [C])``.
    """
    p, t = _check(probs, y)
    per = np.empty(p.shape[1])
    for c in range(p.shape[1]):
        gap, count = _gaps(p[:, c], (t == c).astype(float), uniform_bin_index(p[:, c], n_bins), n_bins)
        per[c] = (gap * count).sum() / p.shape[0]
    return float(per.mean()), per


def nll(probs: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood ``-mean log p[y]`` (probabilities clipped at 1e-12)."""
    p, t = _check(probs, y)
    return float(-np.log(np.maximum(p[np.arange(p.shape[0]), t], _EPS)).mean())


def brier(probs: np.ndarray, y: np.ndarray) -> float:
    """Multiclass Brier score ``mean_i sum_c (p_ic - 1[y_i = c])^2`` (range [0, 2])."""
    p, t = _check(probs, y)
    onehot = np.zeros_like(p)
    onehot[np.arange(p.shape[0]), t] = 1.0
    return float(((p - onehot) ** 2).sum(axis=1).mean())


def batched_top_label_metrics(probs: np.ndarray, y: np.ndarray, n_bins: int = 15) -> dict[str, np.ndarray]:
    """ECE (equal width), NLL and Brier for many probability sets at once.

    Args:
        probs: ``[B, N, C]`` probabilities (no input checks: callers validate once).
        y: ``[N]`` true class indices shared by every set.
        n_bins: equal-width bins for ECE.

    Returns:
        ``{"ece", "nll", "brier", "pred"}``; metrics ``[B]`` float64, ``pred`` ``[B, N]`` argmax.
    """
    b, n, _ = probs.shape
    pred = probs.argmax(axis=2)
    conf = np.take_along_axis(probs, pred[..., None], axis=2)[..., 0].astype(np.float64)
    p_true = np.take_along_axis(probs, np.broadcast_to(y[None, :, None], (b, n, 1)), axis=2)[..., 0]
    flat = (np.arange(b)[:, None] * n_bins + uniform_bin_index(conf, n_bins)).ravel()
    size = b * n_bins
    csum = np.bincount(flat, weights=conf.ravel(), minlength=size)
    hsum = np.bincount(flat, weights=(pred == y[None]).ravel().astype(np.float64), minlength=size)
    # |sum(hit) - sum(conf)| over a bin equals n_b * |acc_b - conf_b|, so no division by the count is needed.
    ece_b = np.abs(hsum - csum).reshape(b, n_bins).sum(axis=1) / n
    sq = np.einsum("bnc,bnc->bn", probs, probs, dtype=np.float64)
    return {
        "ece": ece_b,
        "nll": -np.log(np.maximum(p_true.astype(np.float64), _EPS)).mean(axis=1),
        "brier": (sq - 2.0 * p_true + 1.0).mean(axis=1),
        "pred": pred,
    }
