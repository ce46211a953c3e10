"""Evaluation of stored logits for the report: metrics before/after temperature scaling, family statistics.

Every number here is computed from a model's LAST-epoch logits (the run's exported ``logits.parquet``), never from a
best-epoch checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fer_core.calibrate.metrics import brier, ece, nll
from fer_core.calibrate.temperature import apply_temperature, fit_temperature
from fer_core.calibrate.thresholds import ThresholdConfig, abstention_table, select_thresholds
from fer_core.ensemble.fusion import softmax
from fer_core.errors import DataIntegrityError
from fer_core.evaluate.metrics import classification_metrics, confusion
from fer_core.evaluate.stats import paired_permutation_test, seed_t_ci, summarize
from fer_core.taxonomy import FER_CLASSES

#: The metrics every table of the report shows, in order.
HEADLINE = ("accuracy", "macro_f1", "minority_f1", "ece_15", "nll", "brier")


def prob_metrics(probs: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Accuracy, macro-F1, minority-F1, per-class F1, ECE (15 bins), NLL and Brier of probabilities ``[N, C]``."""
    out = classification_metrics(y, probs.argmax(axis=1))
    out.update({"ece_15": ece(probs, y, 15), "nll": nll(probs, y), "brier": brier(probs, y)})
    return out


@dataclass(frozen=True)
class Evaluation:
    """One model on the evaluation split: metrics of raw and of temperature-scaled probabilities.

    Attributes:
        before: metrics of ``softmax(z)`` (for an ensemble: of the fused probabilities at the tuned T).
        after: metrics after a global temperature fitted on the validation split.
        temperature: the fitted temperature.
        confusion: ``[C, C]`` counts (rows = true class) of the argmax predictions (identical before and after).
        subsets: ``{name: metrics before calibration}`` on named subsets of the evaluation rows.
        subsets_after: the same subsets after temperature scaling.
    """

    before: dict[str, float]
    after: dict[str, float]
    temperature: float
    confusion: np.ndarray
    probs_before: np.ndarray
    probs_after: np.ndarray
    subsets: dict[str, dict[str, float]] = field(default_factory=dict)
    subsets_after: dict[str, dict[str, float]] = field(default_factory=dict)


def _subsets(probs: np.ndarray, y: np.ndarray, masks: Mapping[str, np.ndarray] | None) -> dict[str, dict[str, float]]:
    out = {}
    for name, m in (masks or {}).items():
        m = np.asarray(m, dtype=bool)
        if m.shape != y.shape:
            raise DataIntegrityError(f"subset {name!r} mask has shape {m.shape}, evaluation rows {y.shape}")
        if m.any():
            out[name] = prob_metrics(probs[m], y[m])
    return out


def evaluate_logits(
    z_val: np.ndarray,
    y_val: np.ndarray,
    z_test: np.ndarray,
    y_test: np.ndarray,
    subsets: Mapping[str, np.ndarray] | None = None,
) -> Evaluation:
    """Metrics of one model's test logits, raw and with a global temperature fitted on its validation logits."""
    fit = fit_temperature(z_val, y_val, z_test.shape[1])
    before = softmax(np.asarray(z_test, np.float64))
    after = apply_temperature(z_test, fit.temperature)
    return Evaluation(
        before=prob_metrics(before, y_test),
        after=prob_metrics(after, y_test),
        temperature=float(fit.temperature),
        confusion=confusion(y_test, before.argmax(1)),
        probs_before=before,
        probs_after=after,
        subsets=_subsets(before, y_test, subsets),
        subsets_after=_subsets(after, y_test, subsets),
    )


def evaluate_probs(
    p_val: np.ndarray,
    y_val: np.ndarray,
    p_test: np.ndarray,
    y_test: np.ndarray,
    subsets: Mapping[str, np.ndarray] | None = None,
) -> Evaluation:
    """:func:`evaluate_logits` for a model that outputs probabilities (an ensemble); log-probabilities act as logits."""
    eps = 1e-12
    return evaluate_logits(np.log(p_val + eps), y_val, np.log(p_test + eps), y_test, subsets)


def abstention(p_val: np.ndarray, y_val: np.ndarray, p_test: np.ndarray, y_test: np.ndarray,
               cfg: ThresholdConfig = ThresholdConfig()) -> pd.DataFrame:  # fmt: skip
    """Per-class thresholds chosen on calibrated validation probabilities, applied to the test split."""
    thr = select_thresholds(p_val, y_val, cfg)
    return abstention_table(p_test, y_test, thr.thresholds, FER_CLASSES, thr.notes)


def family_table(
    rows: pd.DataFrame, baseline: str, metrics: Sequence[str] = ("accuracy", "macro_f1", "minority_f1", "ece_15")
) -> pd.DataFrame:
    """Per family across seeds: ``n``, mean and std of each metric, and the paired comparison with ``baseline``.

    Args:
        rows: one row per (``family``, ``seed``) with the metric columns.
        baseline: the family every other family is compared with (paired by seed).

    Returns:
        One row per family (sorted by mean macro-F1): ``<metric>_mean``, ``<metric>_std``, and for non-baseline
        families ``d_<metric>`` (mean paired difference), ``d_<metric>_ci`` (95 % paired Student-t interval over
        seeds, n - 1 degrees of freedom: a percentile bootstrap over a handful of seeds undercovers) and
        ``p_<metric>`` (exact paired permutation test) on the seeds both families have.

    Raises:
        DataIntegrityError: a family has the same seed twice.
    """
    dup = rows.duplicated(["family", "seed"])
    if dup.any():
        raise DataIntegrityError(f"duplicate (family, seed) rows: {rows.loc[dup, ['family', 'seed']].values.tolist()}")
    base = rows[rows["family"] == baseline].set_index("seed")
    out = []
    for fam, g in rows.groupby("family", sort=False):
        g = g.set_index("seed")
        rec: dict[str, object] = {"family": fam, "n_seeds": len(g)}
        for m in metrics:
            s = summarize(g[m].to_numpy())
            rec[f"{m}_mean"], rec[f"{m}_std"] = s.mean, s.std
        common = sorted(set(g.index) & set(base.index))
        if fam != baseline and len(common) >= 2:
            for m in metrics:
                a, b = g.loc[common, m].to_numpy(), base.loc[common, m].to_numpy()
                ci = seed_t_ci(a, b)
                rec[f"d_{m}"], rec[f"d_{m}_ci"] = ci.estimate, (ci.low, ci.high)
                rec[f"p_{m}"] = paired_permutation_test(a, b).p_value
        out.append(rec)
    return pd.DataFrame(out).sort_values("macro_f1_mean", ascending=False, ignore_index=True)
