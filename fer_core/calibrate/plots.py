"""Calibration figures (reliability diagram, confidence histogram, selective curve, confusion), written atomically."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fer_core.calibrate.metrics import ece, reliability_bins
from fer_core.calibrate.thresholds import aurc, selective_curve
from fer_core.io import atomic_write_bytes
from fer_core.taxonomy import FER_CLASSES


def new_figure(size: tuple[float, float] = (5.0, 4.5)) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure  # no pyplot: nothing global to leak or close

    return Figure(figsize=size, dpi=100)


def save_png(fig: Any, path: str | Path) -> Path:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def reliability_diagram(
    probs: np.ndarray, y: np.ndarray, path: str | Path, n_bins: int = 15, title: str = "Reliability"
) -> Path:
    """Accuracy vs confidence per equal-width bin, with the diagonal and the ECE in the legend.

    Args:
        probs: ``[N, C]`` probabilities.
        y: ``[N]`` labels.
        path: PNG destination.
        n_bins: number of bins.
        title: figure title.

    Returns:
        The written path.
    """
    bins = reliability_bins(probs, y, n_bins)
    fig = new_figure()
    ax = fig.add_subplot()
    width = 1.0 / n_bins
    ax.bar(bins.lower, bins.accuracy, width=width, align="edge", edgecolor="black", label="accuracy")
    ax.bar(bins.lower, bins.confidence - bins.accuracy, bottom=bins.accuracy, width=width, align="edge",
           color="tab:red", alpha=0.3, label="gap")  # fmt: skip
    ax.plot([0, 1], [0, 1], "k--", lw=1)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy",
           title=f"{title} (ECE={ece(probs, y, n_bins):.3f})")  # fmt: skip
    ax.legend(loc="upper left")
    return save_png(fig, path)


def confidence_histogram(probs: np.ndarray, path: str | Path, n_bins: int = 20, title: str = "Confidence") -> Path:
    """Histogram of top-label confidence ``max p`` (``probs [N, C]``) with its mean marked."""
    conf = np.asarray(probs).max(axis=1)
    fig = new_figure()
    ax = fig.add_subplot()
    ax.hist(conf, bins=n_bins, range=(0, 1), edgecolor="black")
    ax.axvline(float(conf.mean()), color="tab:red", ls="--", label=f"mean {conf.mean():.3f}")
    ax.set(xlabel="confidence", ylabel="samples", title=title)
    ax.legend()
    return save_png(fig, path)


def selective_plot(probs: np.ndarray, y: np.ndarray, path: str | Path, title: str = "Selective prediction") -> Path:
    """Risk vs coverage curve (``probs [N, C]``, ``y [N]``) with its AURC."""
    curve = selective_curve(probs, y)
    fig = new_figure()
    ax = fig.add_subplot()
    ax.plot(curve["coverage"], curve["risk"], lw=1.5)
    ax.set(xlim=(0, 1), ylim=(0, None), xlabel="coverage", ylabel="risk (error rate)",
           title=f"{title} (AURC={aurc(probs, y):.3f})")  # fmt: skip
    return save_png(fig, path)


def confusion_plot(
    cm: np.ndarray, path: str | Path, classes: Sequence[str] = FER_CLASSES, normalize: bool = True
) -> Path:
    """Confusion matrix ``[C, C]`` (rows = true class) as a heat map; rows normalised to recall if ``normalize``."""
    m = np.asarray(cm, dtype=np.float64)
    if normalize:
        m = m / np.maximum(m.sum(axis=1, keepdims=True), 1.0)
    fig = new_figure((6.0, 5.5))
    ax = fig.add_subplot()
    im = ax.imshow(m, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    fig.colorbar(im, ax=ax, fraction=0.046)
    ticks = np.arange(len(classes))
    ax.set_xticks(ticks, list(classes), rotation=45, ha="right")
    ax.set_yticks(ticks, list(classes))
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(j, i, f"{m[i, j]:.2f}" if normalize else f"{int(m[i, j])}", ha="center", va="center", fontsize=7,
                    color="white" if m[i, j] > 0.6 * max(m.max(), 1e-12) else "black")  # fmt: skip
    ax.set(xlabel="predicted", ylabel="true", title="Confusion matrix")
    return save_png(fig, path)
