"""Classification metrics (scikit-learn does the counting): accuracy, macro-F1, per-class F1, minority-F1, confusion."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fer_core.errors import DataIntegrityError
from fer_core.taxonomy import FER_CLASSES, MINORITY_CLASSES


def _check_labels(y_true: np.ndarray, n_classes: int) -> None:
    bad = np.flatnonzero((y_true < 0) | (y_true >= n_classes))
    if bad.size:
        raise DataIntegrityError(
            f"{bad.size} labels outside [0, {n_classes - 1}]",
            [(f"row {i}", f"label {int(y_true[i])}") for i in bad[:50]],
        )


def classification_metrics(
    y_true: Sequence[int] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    classes: Sequence[str] = FER_CLASSES,
    minority: Sequence[str] = MINORITY_CLASSES,
) -> dict[str, float]:
    """Accuracy, macro-F1, minority-F1 and ``f1/<class>`` for hard predictions.

    Args:
        y_true: true class indices ``[N]``.
        y_pred: predicted class indices ``[N]``.
        classes: class names in index order.
        minority: the classes whose mean F1 is ``minority_f1``.

    Returns:
        Flat dict of floats, ready for a metrics sink.

    Raises:
        DataIntegrityError: a label outside the class range, or empty input.
    """
    yt = np.asarray(y_true, dtype=np.int64)
    yp = np.asarray(y_pred, dtype=np.int64)
    if yt.size == 0:
        raise DataIntegrityError("cannot compute metrics on an empty set")
    _check_labels(yt, len(classes))
    from sklearn.metrics import f1_score  # lazy: ~1-4 s to import, and Ray Tune trials that only need the batched
    # helpers below would pay it on every start-up

    labels = list(range(len(classes)))
    per_class = f1_score(yt, yp, labels=labels, average=None, zero_division=0.0)
    out = {
        "accuracy": float(np.mean(yt == yp)),
        "macro_f1": float(np.mean(per_class)),
        "minority_f1": float(np.mean([per_class[list(classes).index(c)] for c in minority])) if minority else 0.0,
    }
    out.update({f"f1/{c}": float(f) for c, f in zip(classes, per_class, strict=True)})
    return out


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = len(FER_CLASSES)) -> np.ndarray:
    """Confusion matrix ``[C, C]`` (rows = true class)."""
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(np.asarray(y_true), np.asarray(y_pred), labels=list(range(n_classes)))


def batched_confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Confusion counts for many prediction sets at once, from one ``bincount``.

    Args:
        y_true: true class indices ``[N]`` (shared by every set) or ``[B, N]``.
        y_pred: predicted class indices ``[B, N]``.
        n_classes: ``C``.

    Returns:
        int64 counts ``[B, C, C]`` (rows = true class).
    """
    yp = np.asarray(y_pred, dtype=np.int64)
    if yp.ndim == 1:
        yp = yp[None]
    yt = np.broadcast_to(np.asarray(y_true, dtype=np.int64), yp.shape)
    b = yp.shape[0]
    cc = n_classes * n_classes
    flat = (np.arange(b, dtype=np.int64)[:, None] * cc + yt * n_classes + yp).ravel()
    return np.bincount(flat, minlength=b * cc).reshape(b, n_classes, n_classes)


def f1_from_confusion(cm: np.ndarray) -> np.ndarray:
    """Per-class F1 ``2TP / (2TP + FP + FN)`` from confusion counts ``[..., C, C]``; 0 where undefined (as sklearn).

    Returns:
        float64 ``[..., C]``.
    """
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    denom = cm.sum(axis=-1) + cm.sum(axis=-2)  # (TP + FN) + (TP + FP)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denom > 0, 2.0 * tp / np.where(denom > 0, denom, 1.0), 0.0)


def metrics_from_confusion(
    cm: np.ndarray,
    classes: Sequence[str] = FER_CLASSES,
    minority: Sequence[str] = MINORITY_CLASSES,
) -> dict[str, np.ndarray]:
    """Accuracy, macro-F1 and minority-F1 for each confusion matrix in ``cm [B, C, C]`` (each value ``[B]``)."""
    cm = np.asarray(cm)
    f1 = f1_from_confusion(cm)
    n = cm.sum(axis=(-2, -1))
    idx = [list(classes).index(c) for c in minority]
    return {
        "accuracy": np.trace(cm, axis1=-2, axis2=-1) / np.maximum(n, 1),
        "macro_f1": f1.mean(axis=-1),
        "minority_f1": f1[..., idx].mean(axis=-1) if idx else np.zeros(cm.shape[:-2]),
    }
