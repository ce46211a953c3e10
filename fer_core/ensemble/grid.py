"""Weight grids and the vectorised (weights x temperature) evaluation used inside Ray Tune trials."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd

from fer_core.calibrate.metrics import batched_top_label_metrics
from fer_core.ensemble.fusion import _check_logits_kn, normalise_weights, softmax
from fer_core.errors import ConfigError, DataIntegrityError
from fer_core.evaluate.metrics import batched_confusion, metrics_from_confusion
from fer_core.taxonomy import FER_CLASSES, MINORITY_CLASSES

METRIC_COLUMNS = ("accuracy", "macro_f1", "minority_f1", "ece", "nll", "brier")


def _steps(step: float) -> int:
    n = round(1.0 / step) if step > 0 else 0
    if n < 1 or abs(n * step - 1.0) > 1e-9:
        raise ConfigError(f"step must divide 1 exactly (e.g. 0.05, 0.1, 0.25), got {step}")
    return n


def simplex_grid(k: int, step: float) -> np.ndarray:
    """Every weight vector of ``k`` non-negative multiples of ``step`` summing to 1.

    Returns:
        float64 ``[G, K]`` with ``G = C(n + k - 1, k - 1)``, ``n = 1 / step``; lexicographic order.
    """
    if k < 1:
        raise ConfigError(f"k (number of teachers) must be >= 1, got {k}")
    n = _steps(step)
    rows = [c for c in itertools.product(range(n + 1), repeat=k - 1) if sum(c) <= n]
    return np.array([[*c, n - sum(c)] for c in rows], dtype=np.float64) / n


def ratio_grid(step: float = 0.05, low: float = 0.0, high: float = 1.0) -> np.ndarray:
    """Two-teacher grid ``[a, 1 - a]`` for ``a`` from ``low`` to ``high`` (inclusive) in ``step`` increments.

    Returns:
        float64 ``[G, 2]``.
    """
    if not 0.0 <= low <= high <= 1.0 or step <= 0:
        raise ConfigError(f"need 0 <= low <= high <= 1 and step > 0, got low={low}, high={high}, step={step}")
    a = np.round(np.arange(low, high + step / 2, step), 10)
    a = a[a <= high + 1e-12]
    return np.stack([a, 1.0 - a], axis=1)


def _metrics_block(probs: np.ndarray, y: np.ndarray, classes, minority, n_bins: int) -> dict[str, np.ndarray]:
    top = batched_top_label_metrics(probs, y, n_bins)
    out = metrics_from_confusion(batched_confusion(y, top.pop("pred"), len(classes)), classes, minority)
    out.update(top)
    return out


def evaluate_grid(
    logits: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    temperatures: Sequence[float] | np.ndarray,
    classes: Sequence[str] = FER_CLASSES,
    minority: Sequence[str] = MINORITY_CLASSES,
    n_bins: int = 15,
    max_elements: int = 20_000_000,
) -> pd.DataFrame:
    """Metrics of every (weights, T) ensemble configuration, computed in batched numpy ops.

    Per temperature, the teachers' softmaxes are computed once and every weight vector is fused by one ``einsum``;
    confusion counts for a whole block of configurations come from one ``bincount`` of ``b*C*C + true*C + pred``.

    Args:
        logits: ``[K, N, C]`` teacher logits aligned by sample id.
        y: ``[N]`` true class indices.
        weights: ``[G, K]`` non-negative weights (rows are normalised).
        temperatures: ``[M]`` temperatures ``> 0``.
        classes: class names in index order.
        minority: classes averaged into ``minority_f1``.
        n_bins: equal-width bins for ECE.
        max_elements: cap on the float32 ``[B, N, C]`` block held at once (memory bound).

    Returns:
        DataFrame with ``G * M`` rows (temperature-major): ``config_id``, ``w_0..w_{K-1}`` (normalised),
        ``temperature``, ``accuracy``, ``macro_f1``, ``minority_f1``, ``ece``, ``nll``, ``brier``.

    Raises:
        DataIntegrityError: bad shapes, non-finite logits, labels out of range.
        ConfigError: bad weights or temperatures.
    """
    z = _check_logits_kn(logits)
    k, n, c = z.shape
    t = np.asarray(y, dtype=np.int64)
    if c != len(classes) or t.shape != (n,) or n == 0:
        raise DataIntegrityError(
            f"need logits [K, N, {len(classes)}] and labels [N] with N > 0; got {z.shape}, {t.shape}"
        )
    if ((t < 0) | (t >= c)).any():
        raise DataIntegrityError(f"{int(((t < 0) | (t >= c)).sum())} labels outside [0, {c - 1}]")
    w = normalise_weights(np.atleast_2d(weights), k).astype(np.float32)
    temps = np.asarray(temperatures, dtype=np.float64).ravel()
    if temps.size == 0 or not np.isfinite(temps).all() or (temps <= 0).any():
        raise ConfigError(f"temperatures must be a non-empty list of finite values > 0, got {temps.tolist()}")
    block = max(1, max_elements // (n * c))
    parts: list[dict[str, np.ndarray]] = []
    for temp in temps:
        p_k = softmax(z.astype(np.float32), float(temp))
        for s in range(0, w.shape[0], block):
            probs = np.einsum("gk,knc->gnc", w[s : s + block], p_k)
            parts.append(_metrics_block(probs, t, classes, minority, n_bins))
    cols = {m: np.concatenate([p[m] for p in parts]) for m in METRIC_COLUMNS}
    frame = {"config_id": np.arange(w.shape[0] * temps.size)}
    frame.update({f"w_{i}": np.tile(w[:, i].astype(np.float64), temps.size) for i in range(k)})
    frame["temperature"] = np.repeat(temps, w.shape[0])
    frame.update(cols)
    return pd.DataFrame(frame)


def best_config(df: pd.DataFrame, tol: float = 0.0, by: str = "ece") -> pd.Series:
    """The row with the highest ``macro_f1``; among rows within ``tol`` of it, the lowest ``by``, then lowest id.

    A small ``tol`` matters: the ensemble temperature barely moves the fused argmax, so with ``tol = 0`` a
    0.1 pp macro-F1 difference can pick a temperature whose probabilities are badly calibrated. ``by="nll"``
    ranks the near-best rows by a proper scoring rule.

    Raises:
        ConfigError: empty frame or missing columns.
    """
    if df.empty or not {"macro_f1", by} <= set(df.columns):
        raise ConfigError(f"best_config needs a non-empty evaluate_grid frame with macro_f1 and {by} columns")
    near = df[df["macro_f1"] >= df["macro_f1"].max() - tol]
    return near.sort_values([by, "macro_f1"], ascending=[True, False], kind="stable").iloc[0]
